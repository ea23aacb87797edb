"""Workbook access: reading (python-calamine), building (xlsxwriter) and backups."""
