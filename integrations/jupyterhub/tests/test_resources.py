"""Resource translation: the hub's limits → the scheduler's request, and carving it out of offers."""
import unittest

from sched_jupyterhub.proto import common_pb2
from sched_jupyterhub.resources import ResourceRequest, request_from_limits, shortfall, take, task_id_for, user_role

MIB = 1024 * 1024


def offer(*resources, role="notebooks/alice"):
    return common_pb2.Offer(id="o1", agent_id="a1", hostname="h1", role=role, resources=list(resources))


def scalar(name, value, reserved_for=None):
    r = common_pb2.Resource(name=name, scalar=value)
    if reserved_for:
        r.reservation.CopyFrom(common_pb2.Reservation(type=common_pb2.Reservation.DYNAMIC, role=reserved_for))
    return r


def ports(*ranges):
    return common_pb2.Resource(name="ports", ranges=common_pb2.Ranges(
        range=[common_pb2.Range(begin=b, end=e) for b, e in ranges]))


class RequestFromLimitsTests(unittest.TestCase):
    def test_limits_become_cores_and_whole_mebibytes(self):
        r = request_from_limits(cpu_limit=0.5, mem_limit=256 * MIB)
        self.assertEqual(r, ResourceRequest(cpus=0.5, mem_mib=256, disk_mib=0, ports=1))

    def test_memory_is_rounded_up_so_the_server_never_gets_less(self):
        self.assertEqual(request_from_limits(cpu_limit=1, mem_limit=256 * MIB + 1).mem_mib, 257)

    def test_cpus_are_rounded_up_to_three_decimals(self):
        self.assertEqual(request_from_limits(cpu_limit=0.1234, mem_limit=MIB).cpus, 0.124)

    def test_a_limit_wins_over_a_guarantee(self):
        r = request_from_limits(cpu_limit=2, mem_limit=512 * MIB, cpu_guarantee=1, mem_guarantee=128 * MIB)
        self.assertEqual((r.cpus, r.mem_mib), (2, 512))

    def test_a_guarantee_is_used_without_a_limit(self):
        r = request_from_limits(cpu_limit=None, mem_limit=None, cpu_guarantee=0.25, mem_guarantee=64 * MIB)
        self.assertEqual((r.cpus, r.mem_mib), (0.25, 64))

    def test_defaults_apply_when_the_hub_sets_nothing(self):
        r = request_from_limits(None, None, None, None, default_cpus=1.5, default_mem_mib=700, disk_mib=100)
        self.assertEqual(r, ResourceRequest(cpus=1.5, mem_mib=700, disk_mib=100, ports=1))

    def test_a_negative_limit_is_refused_with_its_name(self):
        with self.assertRaisesRegex(ValueError, "cpu_limit is -1"):
            request_from_limits(cpu_limit=-1, mem_limit=MIB)
        with self.assertRaisesRegex(ValueError, "mem_limit"):
            request_from_limits(cpu_limit=1, mem_limit=float("inf"))

    def test_no_amount_at_all_is_refused_with_what_to_set(self):
        with self.assertRaisesRegex(ValueError, "cpu_limit"):
            request_from_limits(None, MIB, default_cpus=0)


class RoleTests(unittest.TestCase):
    def test_a_plain_name_is_its_own_segment(self):
        self.assertEqual(user_role("notebooks", "alice"), "notebooks/alice")

    def test_named_servers_share_their_users_role(self):
        self.assertEqual(user_role("notebooks", "alice", "gpu"), "notebooks/alice")

    def test_characters_the_master_refuses_are_escaped(self):
        self.assertEqual(user_role("notebooks", "a b/c:d"), "notebooks/a%20b%2Fc%3Ad")
        self.assertEqual(user_role("notebooks", "-x"), "notebooks/%2Dx")
        self.assertEqual(user_role("notebooks", ".."), "notebooks/%2E%2E")
        self.assertEqual(user_role("notebooks", "émile"), "notebooks/%C3%A9mile")

    def test_the_escape_is_one_to_one(self):
        names = ["a%20b", "a b", "a_b", "a.b", "a-b", "a%b"]
        self.assertEqual(len({user_role("n", n) for n in names}), len(names))

    def test_the_prefix_may_be_nested_and_is_trimmed(self):
        self.assertEqual(user_role("/eng/notebooks/", "bob"), "eng/notebooks/bob")
        with self.assertRaisesRegex(ValueError, "role_prefix"):
            user_role("/", "bob")

    def test_task_ids_are_safe_for_paths(self):
        self.assertEqual(task_id_for("a.b/c", "", "1234"), "jupyter-a_b_c-1234")
        self.assertEqual(task_id_for("alice", "gpu", "ab"), "jupyter-alice-gpu-ab")


class TakeTests(unittest.TestCase):
    request = ResourceRequest(cpus=0.5, mem_mib=256)

    def test_the_request_is_carved_with_the_offers_role_and_the_lowest_port(self):
        o = offer(scalar("cpus", 4), scalar("mem", 4096), ports((31005, 31010), (31000, 31001)))
        resources, chosen = take(o, self.request, common_pb2)
        self.assertEqual(chosen, [31000])
        by_name = {r.name: r for r in resources}
        self.assertEqual(by_name["cpus"].scalar, 0.5)
        self.assertEqual(by_name["mem"].scalar, 256)
        self.assertEqual([(g.begin, g.end) for g in by_name["ports"].ranges.range], [(31000, 31000)])
        self.assertTrue(all(r.allocation_role == "notebooks/alice" for r in resources))

    def test_reserved_resources_are_used_first_and_keep_their_reservation(self):
        o = offer(scalar("cpus", 4), scalar("cpus", 0.25, reserved_for="notebooks/alice"),
                  scalar("mem", 4096), ports((31000, 31000)))
        resources, _ = take(o, self.request, common_pb2)
        cpus = [r for r in resources if r.name == "cpus"]
        self.assertEqual([(r.scalar, r.reservation.role) for r in cpus], [(0.25, "notebooks/alice"), (0.25, "")])

    def test_an_offer_too_small_is_refused_with_what_is_missing(self):
        o = offer(scalar("cpus", 0.25), scalar("mem", 4096))
        self.assertIsNone(take(o, self.request, common_pb2))
        self.assertEqual(shortfall(o, self.request), "cpus: needs 0.5, offered 0.25; ports: needs 1, offered 0")

    def test_disk_is_asked_only_when_configured(self):
        o = offer(scalar("cpus", 1), scalar("mem", 512), ports((1, 1)))
        self.assertIsNotNone(take(o, self.request, common_pb2))
        self.assertEqual(shortfall(o, ResourceRequest(cpus=1, mem_mib=512, disk_mib=10)),
                         "disk: needs 10 MiB, offered 0 MiB")


if __name__ == "__main__":
    unittest.main()
