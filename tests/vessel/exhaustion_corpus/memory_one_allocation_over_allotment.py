# attack: memory, with one 200 MB allocation: over the allotment but under the address-space backstop
# expect: killed-memory
# allotment: memory=64000000
x = b'x' * 200000000
while True:
    sleep(1)
