# attack: threads, with createthread in a loop, each thread holding on to its event forever
# expect: error:ResourceExhaustedError
# message: events: all 8 allowed are in use
# allotment: events=8
def hold():
    while True:
        sleep(10)


while True:
    createthread(hold)
