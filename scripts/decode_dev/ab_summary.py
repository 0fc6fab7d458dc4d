"""One table from several `decode_test bench` logs (scripts/decode_dev/ab.sh): us per call with PDL and weight
prefetch (the library's default launch) per shape and M, one column per log, then the geometric mean of
time / floor over M 1-16 and over M = 16 alone."""
import math
import re
import sys

# (the config column is warps/tile_nb/split, padded: "8/16/8", "8/ 8/7")
ROW = re.compile(r"\|\s*(\S+)\s*\|\s*\d+\s*\|\s*\d+\s*\|\s*(\d+)\s*\|\s*([^|]*?)\s*\|\s*\d+\s*\|\s*[\d.]+\s*\|"
                 r"\s*[\d.]+\s*\|\s*[\d.]+\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|")


def main(paths):
    columns, keys, configs = {}, [], {}
    for path in paths:
        name = re.sub(r".*bench_(.*)\.txt$", r"\1", path)
        rows = {}
        with open(path) as f:
            for line in f:
                m = ROW.match(line)
                if m:
                    key = (m.group(1), int(m.group(2)))
                    rows[key] = (float(m.group(4)), float(m.group(5)))
                    configs.setdefault((name, key), m.group(3))
                    if key not in keys:
                        keys.append(key)
        columns[name] = rows
    names = list(columns)
    print(f"{'shape':12s} {'M':>2s} | " + " | ".join(f"{n:>10s}" for n in names) + "   (us per call, PDL)")
    for key in keys:
        cells = [f"{columns[n][key][0]:10.2f}" if key in columns[n] else f"{'-':>10s}" for n in names]
        print(f"{key[0]:12s} {key[1]:2d} | " + " | ".join(cells))
    for ms, label in (((1, 4, 16), "t/floor M1-16"), ((16,), "t/floor M16")):
        cells = []
        for n in names:
            v = [columns[n][k][1] for k in keys if k[1] in ms and k in columns[n]]
            cells.append(f"{math.exp(sum(map(math.log, v)) / len(v)):10.3f}" if v else f"{'-':>10s}")
        print(f"{label:15s} | " + " | ".join(cells))
    # the config each variant picked (warps/tile_nb/split), where it differs from the first column's
    for n in names[1:]:
        diff = [f"{k[0]}@{k[1]} {configs.get((names[0], k))}->{configs[(n, k)]}" for k in keys
                if (n, k) in configs and configs[(n, k)] != configs.get((names[0], k))]
        if diff:
            print(f"configs {n}: " + ", ".join(diff))


if __name__ == "__main__":
    main(sys.argv[1:])
