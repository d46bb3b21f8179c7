"""Runs the reference Python package ChannelAttribution (a C++ core that estimates the Markov
removal effects by simulation) on the same file, and prints its time and its per-channel
conversions as CSV for the comparison."""
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
print("channel,conversions,value")
for _, row in result.iterrows():
    print(f"{row['channel_name']},{row['total_conversions']},{row['total_conversion_value']}")
