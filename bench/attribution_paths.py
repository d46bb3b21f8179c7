"""Writes a path-aggregate CSV for the attribution benchmark: ROWS rows over CHANNELS channels,
in the common format (path,total_conversions,total_conversion_value,total_null), from a fixed
seed so every run reads the same file. Channel preference and the chance to convert vary by
channel so the models disagree the way real data makes them."""
import random
import sys

rows, channels, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = random.Random(20261124)
names = [f"ch{i:02d}" for i in range(channels)]
popularity = [1.0 / (i + 1) for i in range(channels)]
lift = [0.02 + 0.08 * rng.random() for _ in range(channels)]
with open(out, "w") as f:
    f.write("path,total_conversions,total_conversion_value,total_null\n")
    for _ in range(rows):
        length = min(1 + int(rng.expovariate(0.45)), 12)
        path = rng.choices(range(channels), weights=popularity, k=length)
        p = min(0.9, sum(lift[c] for c in set(path)))
        people = 1 + int(rng.expovariate(0.2))
        conversions = sum(1 for _ in range(people) if rng.random() < p)
        value = round(conversions * rng.uniform(20, 200), 2)
        f.write(f"{' > '.join(names[c] for c in path)},{conversions},{value},{people - conversions}\n")
