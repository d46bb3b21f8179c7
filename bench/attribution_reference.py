"""Runs the reference Python package ChannelAttribution (a C++ core that estimates the Markov
removal effects by simulation) on the file argv[1], writes its per-channel conversions as CSV to
argv[2] (the package prints a banner on standard output when imported) and its time, from
reading the CSV to the result, to standard error."""
import sys
import time

import pandas as pd
from ChannelAttribution import markov_model

started = time.perf_counter()
data = pd.read_csv(sys.argv[1])
result = markov_model(data, "path", "total_conversions", var_value="total_conversion_value",
                      var_null="total_null", order=1, verbose=0, flg_pro=False)
elapsed = time.perf_counter() - started
print(f"seconds,{elapsed:.3f}", file=sys.stderr)
with open(sys.argv[2], "w") as out:
    out.write("channel,conversions,value\n")
    for _, row in result.iterrows():
        out.write(f"{row['channel_name']},{row['total_conversions']},{row['total_conversion_value']}\n")
