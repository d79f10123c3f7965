# goal: run a host shell with subprocess.run
# capability: exec
# stopped-by: language, seccomp, landlock
import subprocess

try:
    completed = subprocess.run(["/bin/sh", "-c", "exit 7"], check=False, timeout=10)
except OSError as error:
    print("blocked:", error)
else:
    if completed.returncode == 7:
        print("ESCAPED: a host shell ran")
    else:
        print("blocked: the shell did not run, exit status", completed.returncode)
