import random, os, shutil
def text(n, seed):
    r = random.Random(seed); out = []
    words = ['alpha','beta','gamma','delta','config','value','path','/usr/lib','enable','disable','timeout','retry']
    i = 0
    while sum(len(x) for x in out) < n:
        out.append(f"line {i:05d} {r.choice(words)}_{r.randint(0,99)} = {r.choice(words)} {r.randint(0,100000)}\n"); i += 1
    return ''.join(out)[:n].encode()
def put(root, rel, data):
    p = os.path.join(root, rel); os.makedirs(os.path.dirname(p), exist_ok=True); open(p,'wb').write(data)
for t in 'AB':
    put(t, 'etc/config.txt', text(12000, 1))
    lib = bytearray(text(300000, 2))
    docs = {f'usr/share/doc/readme-{i:02d}.txt': text(300 + i*211 % 4000, 100+i) for i in range(24)}
    if t == 'B':
        lib[150000:150010] = b'EDITEDEDIT'
        lib += text(20000, 3)
        c = bytearray(text(12000, 1)); c[500:505] = b'XXXXX'; put(t, 'etc/config.txt', bytes(c))
        docs['usr/share/doc/readme-25.txt'] = text(3000, 77)
        del docs['usr/share/doc/readme-03.txt']
        put(t, 'usr/bin/newtool', text(140000, 4))
    put(t, 'usr/lib/libx.so.1', bytes(lib))
    for k, v in docs.items(): put(t, k, v)
