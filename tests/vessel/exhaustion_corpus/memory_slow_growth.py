# attack: memory, growing 1 MB at a time with pauses, so only the nanny's RSS poll can see it
# expect: killed-memory
# allotment: memory=64000000
chunks = []
while True:
    chunks.append(b'x' * 1000000)
    sleep(0.01)
