# goal: hide code inside a comment that only a reader honouring the declaration coding: utf-7 decodes, where the shifted sequence for a line break ends the comment
# capability: process
# stopped-by: language, seccomp
# As UTF-8 the next line is one comment; as utf-7 it is the attack.
# just a comment+AAo-import os+AAo-try:+AAo-    pid = os.fork()+AAo-except OSError as error:+AAo-    print("blocked:", error)+AAo-else:+AAo-    if pid == 0:+AAo-        os._exit(0)+AAo-    os.waitpid(pid, 0)+AAo-    print("ESCAPED: forked child", pid)+AAo-
print("only the visible program ran")
