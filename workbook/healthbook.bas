Attribute VB_Name = "healthbook_macros"
' healthbook 的分步按钮：在 VBA 编辑器（Alt+F11）里“文件 → 导入文件”导入本文件，
' 然后在工作表上插入按钮（开发工具 → 插入 → 表单控件 → 按钮），指定下面的宏。
' 每个宏运行与本工作簿同名的 Python 模块（healthbook.xlsm → healthbook.py）中的同名函数，
' 与“一键生成报告”按钮的 SampleCall 相同；RunPython 来自本工作簿已含的 xlwings 模块。

Private Function ModuleName() As String
    ModuleName = Left(ThisWorkbook.Name, InStrRev(ThisWorkbook.Name, ".", -1, vbTextCompare) - 1)
End Function

Private Sub RunStep(step As String)
    RunPython "import " & ModuleName() & ";" & ModuleName() & "." & step & "()"
End Sub

' 一键生成报告：校验、标记、汇总进度、生成通知（与 SampleCall 相同）
Sub HealthbookReport()
    RunStep "main"
End Sub

' 只校验：重写“校验结果”，标出有问题的单元格
Sub HealthbookValidate()
    RunStep "validate"
End Sub

' 校验并汇总进度：重写“居委会进度”“项目进度”“单位进度”
Sub HealthbookRollup()
    RunStep "rollup"
End Sub

' 只生成通知：写到“设置”中“通知输出文件夹”指定的文件夹
Sub HealthbookNotices()
    RunStep "notices"
End Sub
