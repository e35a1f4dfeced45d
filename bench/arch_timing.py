"""CPU compress/decompress time of named configurations on one image, interleaved.

``python -m samic_fast.bench.arch_timing [--archs mambaic,samic] [--rounds 3] [--size 768x512]``

Each round encodes and decodes the image once with every configuration in turn (so a change in
machine load hits all of them alike), on the reference backend, with one torch thread. Prints one
line per call and a JSON summary (times in seconds, the 1-minute load average before each call).
The image is scikit-image's astronaut, resized (bicubic) to the requested size.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", default="mambaic,samic")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", default="768x512", help="WIDTHxHEIGHT")
    args = parser.parse_args(argv)

    import numpy as np
    import torch
    from PIL import Image
    from skimage import data as skdata

    from samic_fast.codec import decode_image, encode_image, load_model

    torch.set_num_threads(1)
    width, height = (int(v) for v in args.size.split("x"))
    img = np.asarray(Image.fromarray(skdata.astronaut()).resize((width, height), Image.BICUBIC))
    models = {a: load_model(None, backend="reference", device="cpu", arch=a) for a in args.archs.split(",")}
    res = {a: {"enc_s": [], "dec_s": [], "load": []} for a in models}
    for rnd in range(args.rounds):
        for arch, model in models.items():
            r = res[arch]
            r["load"].append(round(os.getloadavg()[0], 2))
            t = time.perf_counter()
            data = encode_image(model, img)
            r["enc_s"].append(round(time.perf_counter() - t, 3))
            t = time.perf_counter()
            decode_image(model, data)
            r["dec_s"].append(round(time.perf_counter() - t, 3))
            r["bytes"] = len(data)
            print(f"round {rnd} {arch}: encode {r['enc_s'][-1]:.2f} s, decode {r['dec_s'][-1]:.2f} s, "
                  f"{len(data)} bytes, load {r['load'][-1]}", flush=True)
    for r in res.values():
        r["enc_median_s"] = statistics.median(r["enc_s"])
        r["dec_median_s"] = statistics.median(r["dec_s"])
    print(json.dumps({"size": args.size, "threads": 1, "backend": "reference", "results": res}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
