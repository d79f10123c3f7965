# goal: start a child process with multiprocessing (fork start method) and have it run code
# capability: process
# stopped-by: language, seccomp
import multiprocessing


def child():
    return None


try:
    worker = multiprocessing.get_context("fork").Process(target=child)
    worker.start()
    worker.join(10)
except OSError as error:
    print("blocked:", error)
else:
    if worker.exitcode == 0:
        print("ESCAPED: a multiprocessing child ran")
    else:
        print("blocked: the child did not run, exit code", worker.exitcode)
