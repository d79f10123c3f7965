# goal: delete a host file next to the vessel directory with removefile and a .. or absolute name
# capability: file
# stopped-by: api, landlock
# harness: before the run, create the file victim.txt in the vessel directory's parent directory
for name in ("../victim.txt", "./../victim.txt", ".."):
    try:
        removefile(name)
    except Exception as error:
        print("refused", repr(name), repr(error))
    else:
        print("ESCAPED: removed", repr(name))
