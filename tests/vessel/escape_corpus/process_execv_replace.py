# goal: replace the vessel process itself with a host shell through os.execv (the shell prints the ESCAPED line if it runs)
# capability: exec
# stopped-by: language, seccomp, landlock
import os

try:
    os.execv("/bin/sh", ["sh", "-c", "echo ESCAPED: exec replaced the vessel process with a shell"])
except OSError as error:
    print("blocked:", error)
