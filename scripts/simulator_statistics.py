"""Simulate N events and print the statistics table of docs/simulator.md, with its plot.

    python scripts/simulator_statistics.py --events 20000 --seed 0 --plot docs/simulator_statistics.png

Prints a Markdown table (pulse counts, auxiliary fraction, charges, times, LineFit by kind) and the
simulation speed (events per second of CPU time of this one process, and of wall time).
"""

import argparse
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from modeling_polarbert.linefit import line_fit  # noqa: E402
from modeling_polarbert.numpy_directions import angles_to_unit_vector, opening_angle  # noqa: E402
from modeling_polarbert.simulation import simulate_chunk, simulate_events  # noqa: E402


def measure(n_events, seed):
    simulate_chunk(0, seed=seed + 1)  # warm the caches (geometry, ice tables) outside the timing
    cpu, wall = time.process_time(), time.perf_counter()
    pulses, meta = simulate_events(n_events, seed=seed)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return pulses, meta, n_events / cpu, n_events / wall


def statistics(pulses, meta):
    counts = (meta["last_pulse_index"] - meta["first_pulse_index"] + 1).to_numpy()
    offsets = np.append(meta["first_pulse_index"].to_numpy(), len(pulses))
    direction = line_fit(pulses["sensor_id"], pulses["time"], pulses["charge"], pulses["auxiliary"], offsets)
    angle = opening_angle(angles_to_unit_vector(meta["azimuth"], meta["zenith"]), direction)
    track = meta["is_track"].to_numpy()
    event_of_pulse = np.repeat(np.arange(len(meta)), counts)
    time_ns = pulses["time"].to_numpy()
    first = np.minimum.reduceat(time_ns, offsets[:-1])
    duration = np.maximum.reduceat(time_ns, offsets[:-1]) - first
    aux = pulses["auxiliary"].to_numpy()
    charge = pulses["charge"].to_numpy()
    rows = [
        ("events", f"{len(meta):,}"),
        ("tracks / cascades", f"{track.mean():.3f} / {1 - track.mean():.3f}"),
        ("pulses per event: median / mean", f"{np.median(counts):.0f} / {counts.mean():.0f}"),
        ("pulses per event: 5 / 25 / 75 / 95 / 99 %", " / ".join(f"{v:.0f}" for v in np.percentile(counts, [5, 25, 75, 95, 99]))),
        ("pulses per event: min / max", f"{counts.min()} / {counts.max():,}"),
        ("events with > 768 pulses", f"{(counts > 768).mean():.2%}"),
        ("auxiliary fraction of all pulses", f"{aux.mean():.3f}"),
        ("auxiliary fraction per event: median", f"{np.median(np.bincount(event_of_pulse, aux) / counts):.3f}"),
        ("HLC (primary) pulses per event: median", f"{np.median(np.bincount(event_of_pulse, ~aux)):.0f}"),
        ("charge (p.e.): 5 / 25 / 50 / 75 / 95 / 99 %", " / ".join(f"{v:g}" for v in np.percentile(charge, [5, 25, 50, 75, 95, 99]))),
        ("charge: share of pulses below 0.5 / above 10 p.e.", f"{(charge < 0.5).mean():.3f} / {(charge > 10).mean():.3f}"),
        ("charge of auxiliary pulses: median", f"{np.median(charge[aux]):g}"),
        ("time (ns): 1 / 50 / 99 % of all pulses", " / ".join(f"{v:,.0f}" for v in np.percentile(time_ns, [1, 50, 99]))),
        ("first pulse time (ns): median", f"{np.median(first):,.0f}"),
        ("event duration, first to last pulse (ns): 5 / 50 / 95 %", " / ".join(f"{v:,.0f}" for v in np.percentile(duration, [5, 50, 95]))),
        ("LineFit mean opening angle: all", f"{angle.mean():.3f} rad"),
        ("LineFit: tracks / cascades", f"{angle[track].mean():.3f} / {angle[~track].mean():.3f} rad"),
        ("LineFit median: tracks / cascades", f"{np.median(angle[track]):.3f} / {np.median(angle[~track]):.3f} rad"),
    ]
    return rows, dict(counts=counts, charge=charge, aux=aux, time=time_ns, angle=angle, track=track, duration=duration)


def plot(data, path):
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    ax = axes[0, 0]
    ax.hist(data["counts"], bins=np.logspace(0, np.log10(data["counts"].max() + 1), 60), color="tab:blue")
    ax.axvline(np.median(data["counts"]), color="k", ls="--", label=f"median {np.median(data['counts']):.0f} (Kaggle ~62)")
    ax.set(xscale="log", yscale="log", xlabel="pulses per event", ylabel="events", title="Pulse count")
    ax.legend()
    ax = axes[0, 1]
    bins = np.logspace(np.log10(0.025), np.log10(max(data["charge"].max(), 1.0)), 80)
    ax.hist(data["charge"][~data["aux"]], bins=bins, histtype="step", label="primary (HLC)")
    ax.hist(data["charge"][data["aux"]], bins=bins, histtype="step", label="auxiliary")
    ax.set(xscale="log", yscale="log", xlabel="pulse charge (p.e.)", ylabel="pulses", title="Charge")
    ax.legend()
    ax = axes[1, 0]
    ax.hist(data["time"][~data["aux"]], bins=100, histtype="step", label="primary (HLC)")
    ax.hist(data["time"][data["aux"]], bins=100, histtype="step", label="auxiliary")
    ax.set(yscale="log", xlabel="pulse time (ns)", ylabel="pulses", title="Absolute pulse time")
    ax.legend()
    ax = axes[1, 1]
    bins = np.linspace(0, np.pi, 46)
    track = data["track"]
    ax.hist(data["angle"][track], bins=bins, histtype="step", density=True, label=f"tracks (mean {data['angle'][track].mean():.2f})")
    ax.hist(data["angle"][~track], bins=bins, histtype="step", density=True, label=f"cascades (mean {data['angle'][~track].mean():.2f})")
    ax.plot(bins, 0.5 * np.sin(bins), "k:", label="random direction")
    ax.set(xlabel="LineFit opening angle (rad)", ylabel="density", title="LineFit on the simulator")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", default="docs/simulator_statistics.png")
    args = parser.parse_args()
    pulses, meta, cpu_rate, wall_rate = measure(args.events, args.seed)
    rows, data = statistics(pulses, meta)
    print("| statistic | simulator |")
    print("| --- | --- |")
    for name, value in rows:
        print(f"| {name} | {value} |")
    print(f"\nspeed: {cpu_rate:,.0f} events/s per core (CPU time), {wall_rate:,.0f} events/s wall, one process")
    plot(data, args.plot)
    print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
