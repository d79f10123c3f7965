# goal: pass an object with a lying __bool__ as acquire(blocking), whose hook releases the lock from inside the API call
# capability: object
# stopped-by: api
ran_inside = []
lock = createlock()


class Truthy:
    def __bool__(self):
        ran_inside.append("__bool__")
        try:
            lock.release()
        except Exception as error:
            ran_inside.append(type(error).__name__)
        return False


for attempt in (lambda: lock.acquire(Truthy()), lambda: lock.acquire(1), lambda: lock.acquire(None)):
    try:
        result = attempt()
    except Exception as error:
        print("refused:", type(error).__name__)
    else:
        print("accepted:", result)
if ran_inside:
    print("ESCAPED: program code ran inside acquire():", ran_inside)
