# goal: unpickle a payload whose GLOBAL opcode names os.system, so loading data runs a host shell
# capability: exec
# stopped-by: language, seccomp, landlock
import pickle

payload = b"cos\nsystem\n(S'exit 7'\ntR."
status = pickle.loads(payload)
if status != -1 and status >> 8 == 7:
    print("ESCAPED: a host shell ran from unpickling")
else:
    # 127 << 8 is system()'s "no shell could be started": the clone or exec behind it was refused.
    print("blocked: os.system returned", status, "(no shell could be started)" if status == 127 << 8 else "")
