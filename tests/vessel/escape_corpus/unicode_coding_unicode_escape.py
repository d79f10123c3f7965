# goal: hide code inside a comment that only a reader honouring the declaration coding: unicode_escape decodes, where a backslash-u000a escape ends the comment
# capability: process
# stopped-by: language, seccomp
# As UTF-8 the next line is one comment; as unicode_escape it is the attack.
# just a comment\u000aimport os\u000atry:\u000a    pid = os.fork()\u000aexcept OSError as error:\u000a    print("blocked:", error)\u000aelse:\u000a    if pid == 0:\u000a        os._exit(0)\u000a    os.waitpid(pid, 0)\u000a    print("ESCAPED: forked child", pid)\u000a
print("only the visible program ran")
