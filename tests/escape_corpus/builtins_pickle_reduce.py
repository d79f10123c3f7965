# goal: unpickle a payload whose GLOBAL opcode names os.system, so loading data runs a host shell
# capability: exec
# stopped-by: language, seccomp, landlock
import pickle

payload = b"cos\nsystem\n(S'exit 7'\ntR."
status = pickle.loads(payload)
if status != -1 and status >> 8 == 7:
    print("ESCAPED: a host shell ran from unpickling")
else:
    print("blocked: os.system returned", status)
