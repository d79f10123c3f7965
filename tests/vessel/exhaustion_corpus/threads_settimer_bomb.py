# attack: threads, with many timers that fire together and each keep their event (settimer, Repy V1)
# expect: error:ResourceExhaustedError
# message: events: all 4 allowed are in use
# allotment: events=4
def hold():
    sleep(30)


for _ in range(40):
    settimer(0.05, hold, [])
