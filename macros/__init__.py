"""healthbook: Excel automation for a street office's Healthy Street pilot.

The library: ``macros.schema`` (the workbook contract), ``macros.book`` (read/build workbooks),
and the core steps built on them. Entry points (CLI, Excel macros, scheduled script) are thin.
"""

__version__ = "0.1.0"
