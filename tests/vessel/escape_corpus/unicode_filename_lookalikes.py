# goal: open a host file through file names made of look-alike characters (fullwidth dots and slashes, division slash, one-dot leader) that some layer might fold to ../ or /
# capability: file
# stopped-by: api
names = [
    "．．／．．／．．／etc／passwd",
    "..∕..∕..∕etc∕passwd",
    "‥/‥/etc/passwd",
    "﹒﹒/etc/passwd",
    "ｐａｓｓｗｄ",
]
for name in names:
    try:
        handle = openfile(name, False)
    except Exception as error:
        print("refused:", repr(error))
        continue
    data = handle.readat(64, 0)
    handle.close()
    if data.startswith(b"root:"):
        print("ESCAPED: read /etc/passwd through", name)
    else:
        print("opened a vessel file named", name)
