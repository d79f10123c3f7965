# goal: open a hard link planted in the vessel directory whose inode is a file outside it (Landlock checks paths, so only the API's link count check stands)
# capability: file
# stopped-by: api
# harness: before the run, create a file holding SECRET-OUTSIDE outside the vessel directory (same filesystem) and hard-link it into the vessel directory as planted-hardlink
try:
    handle = openfile("planted-hardlink", False)
except Exception as error:
    print("refused planted-hardlink:", repr(error))
else:
    data = handle.readat(64, 0)
    handle.close()
    if b"SECRET-OUTSIDE" in data:
        print("ESCAPED: read a host file through a planted hard link")
