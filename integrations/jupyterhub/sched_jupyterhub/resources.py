"""What a single-user server asks of the cluster, and how it is carved out of an offer.

Pure functions: no I/O, no clock. The scheduler both reserves and enforces (cgroups) what a task
asks for, so the hub's limits are the natural request; a guarantee is used only when no limit is
set, and a configured default when neither is.
"""
import math
from typing import NamedTuple, Optional

MIB = 1024 * 1024

# Characters a role segment may hold as they are; everything else is escaped as %XX (UTF-8).
_ROLE_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@+=~")
_TASK_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")


class ResourceRequest(NamedTuple):
    """Scalars in the scheduler's units: cores, MiB, MiB; and how many ports."""
    cpus: float
    mem_mib: int
    disk_mib: int = 0
    ports: int = 1

    def describe(self):
        parts = [f"cpus {self.cpus:g}", f"mem {self.mem_mib} MiB"]
        if self.disk_mib:
            parts.append(f"disk {self.disk_mib} MiB")
        if self.ports:
            parts.append(f"{self.ports} port{'s' if self.ports != 1 else ''}")
        return ", ".join(parts)


def request_from_limits(cpu_limit, mem_limit, cpu_guarantee=None, mem_guarantee=None,
                        default_cpus=1.0, default_mem_mib=1024, disk_mib=0):
    """Translates the hub's cpu_limit (cores) and mem_limit (bytes) into a ResourceRequest.

    A limit wins over a guarantee; with neither, the defaults apply. cpus are rounded up to the
    scheduler's three decimal places and memory up to whole MiB, so the task never gets less than
    the hub asked for. Raises ValueError naming the bad setting and what to write instead.
    """
    cpus = _positive("cpu_limit", cpu_limit) or _positive("cpu_guarantee", cpu_guarantee) \
        or _positive("default_cpus", default_cpus)
    if not cpus:
        raise ValueError("no CPU amount: set c.Spawner.cpu_limit (cores, e.g. 1) or c.SchedulerSpawner.default_cpus")
    mem_bytes = _positive("mem_limit", mem_limit) or _positive("mem_guarantee", mem_guarantee)
    mem_mib = math.ceil(mem_bytes / MIB) if mem_bytes else _positive("default_mem_mib", default_mem_mib)
    if not mem_mib:
        raise ValueError("no memory amount: set c.Spawner.mem_limit (e.g. '512M') or c.SchedulerSpawner.default_mem_mib")
    disk = _positive("disk_mib", disk_mib) or 0
    return ResourceRequest(cpus=math.ceil(round(cpus * 1000, 6)) / 1000, mem_mib=int(mem_mib),
                           disk_mib=int(math.ceil(disk)), ports=1)


def _positive(name, value):
    """None/0 mean 'not set'; a negative or non-finite number is an error."""
    if value is None or value == 0:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} is {value!r}: give a number")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} is {value!r}: give a positive finite number, or leave it unset")
    return value


def user_role(prefix, username, server_name=""):
    """The role of a user's servers: PREFIX/USER (the user's name escaped into one role segment).

    The escape is one-to-one (%XX for anything outside letters, digits and ._-@+=~, '%' included),
    so two users never share a role. Named servers share their user's role: quotas are per user.
    """
    del server_name  # a user's named servers are metered together
    prefix = prefix.strip("/")
    if not prefix:
        raise ValueError("role_prefix is empty: give a role such as 'notebooks'")
    return f"{prefix}/{_escape_segment(username)}"


def _escape_segment(text):
    if not text:
        raise ValueError("a user name is empty")
    out = []
    for ch in text:
        if ch in _ROLE_SAFE:
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8"))
    segment = "".join(out)
    # The master refuses '.', '..' and segments starting with '-'.
    if segment in (".", ".."):
        segment = segment.replace(".", "%2E")
    if segment.startswith("-"):
        segment = "%2D" + segment[1:]
    return segment


def task_id_for(username, server_name, suffix):
    """A task id safe for sandbox paths: jupyter-USER[-SERVER]-SUFFIX (other characters become _)."""
    def clean(text):
        return "".join(c if c in _TASK_SAFE else "_" for c in text)[:40]
    name = clean(username) + (f"-{clean(server_name)}" if server_name else "")
    return f"jupyter-{name}-{suffix}"


def _scalar_total(resources, name):
    return sum(r.scalar for r in resources if r.name == name and r.WhichOneof("value") == "scalar")


def _port_count(resources):
    return sum(rg.end - rg.begin + 1 for r in resources if r.name == "ports" and r.WhichOneof("value") == "ranges"
               for rg in r.ranges.range)


def shortfall(offer, request):
    """None when the offer can hold the request, else what is missing (for logs and the user)."""
    missing = []
    for name, need, unit in (("cpus", request.cpus, ""), ("mem", request.mem_mib, " MiB"), ("disk", request.disk_mib, " MiB")):
        have = _scalar_total(offer.resources, name)
        if need and have + 1e-9 < need:
            missing.append(f"{name}: needs {need:g}{unit}, offered {have:g}{unit}")
    if request.ports and _port_count(offer.resources) < request.ports:
        missing.append(f"ports: needs {request.ports}, offered {_port_count(offer.resources)}")
    return "; ".join(missing) or None


def take(offer, request, common_pb2):
    """Carves the request out of the offer's resources.

    Returns (resources, ports): Resource messages to put in the TaskInfo (each keeping the
    reservation and allocation role of the offer entry it came from, reserved entries used first)
    and the chosen port numbers. Returns None when the offer cannot hold the request.
    """
    if shortfall(offer, request) is not None:
        return None
    taken = []
    ordered = sorted(offer.resources, key=lambda r: 0 if r.HasField("reservation") else 1)
    for name, need in (("cpus", request.cpus), ("mem", request.mem_mib), ("disk", request.disk_mib)):
        # Thousandths as integers: the scheduler keeps scalars to three decimal places.
        left = round(need * 1000)
        for r in ordered:
            if left <= 0:
                break
            if r.name != name or r.WhichOneof("value") != "scalar" or r.scalar <= 0:
                continue
            part = min(left, round(r.scalar * 1000))
            if part <= 0:
                continue
            taken.append(_copy(r, common_pb2, offer.role, scalar=part / 1000))
            left -= part
    ports = []
    for r in ordered:
        if len(ports) >= request.ports:
            break
        if r.name != "ports" or r.WhichOneof("value") != "ranges":
            continue
        chosen = []
        for rg in sorted(r.ranges.range, key=lambda g: g.begin):
            port = rg.begin
            while port <= rg.end and len(ports) < request.ports:
                ports.append(port)
                chosen.append(port)
                port += 1
        if chosen:
            ranges = common_pb2.Ranges(range=[common_pb2.Range(begin=p, end=p) for p in chosen])
            taken.append(_copy(r, common_pb2, offer.role, ranges=ranges))
    return taken, ports


def _copy(resource, common_pb2, offer_role, scalar: Optional[float] = None, ranges=None):
    out = common_pb2.Resource(name=resource.name, allocation_role=resource.allocation_role or offer_role)
    if resource.HasField("reservation"):
        out.reservation.CopyFrom(resource.reservation)
    if scalar is not None:
        out.scalar = scalar
    if ranges is not None:
        out.ranges.CopyFrom(ranges)
    return out
