# goal: pass an object with a lying __bool__ as acquire(blocking), whose hook releases the lock from inside the API call
# capability: object
# stopped-by: api
ran_inside = []
lock = createlock()


class Truthy:
    def __bool__(self):
        ran_inside.append("bool")
        try:
            lock.release()
        except Exception as error:
            ran_inside.append(repr(error))
        return False


for attempt in (lambda: lock.acquire(Truthy()), lambda: lock.acquire(1), lambda: lock.acquire(None)):
    try:
        result = attempt()
    except Exception as error:
        print("refused:", repr(error))
    else:
        print("accepted:", result)
if ran_inside:
    print("ESCAPED: program code ran inside acquire():", ran_inside)
