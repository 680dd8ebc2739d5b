"""The state the hub keeps for a server, and the framework's roles derived from it."""
import json
import unittest

from sched_jupyterhub.connection import FrameworkSettings
from sched_jupyterhub.framework import HubFramework
from sched_jupyterhub.proto import common_pb2
from sched_jupyterhub.state import ServerState


class ServerStateTests(unittest.TestCase):
    def test_a_state_survives_the_hubs_json_round_trip(self):
        state = ServerState(framework_id="fw-1", task_id="jupyter-alice-1", agent_id="agent-1",
                            role="notebooks/alice", host="10.0.0.5", port=31000)
        self.assertEqual(ServerState.from_dict(json.loads(json.dumps(state.to_dict()))), state)

    def test_no_state_or_a_cleared_state_means_no_server(self):
        self.assertIsNone(ServerState.from_dict({}))
        self.assertIsNone(ServerState.from_dict(None))
        self.assertIsNone(ServerState.from_dict({"version": 1, "framework_id": "fw-1"}))

    def test_a_state_from_another_version_is_refused_with_what_to_do(self):
        with self.assertRaisesRegex(ValueError, "version 2.*stop the server"):
            ServerState.from_dict({"version": 2, "framework_id": "fw", "task_id": "t"})

    def test_a_field_of_the_wrong_type_is_named(self):
        with self.assertRaisesRegex(ValueError, "'port' is '31000'"):
            ServerState.from_dict({"framework_id": "fw", "task_id": "t", "port": "31000"})
        with self.assertRaisesRegex(ValueError, "no framework_id"):
            ServerState.from_dict({"task_id": "t"})


class AdoptionTests(unittest.TestCase):
    def framework(self):
        return HubFramework(FrameworkSettings(masters=("127.0.0.1:1",)))

    def test_adopting_a_saved_server_takes_its_framework_id_and_role(self):
        fw = self.framework()
        self.assertTrue(fw.adopt(ServerState(framework_id="fw-1", task_id="t1", agent_id="a", role="notebooks/alice")))
        self.assertEqual(fw.framework_id, "fw-1")
        self.assertIsNone(fw.task("t1").state)  # unknown until reconciled
        roles, suppressed = fw._desired_roles()
        self.assertEqual(roles, ["notebooks", "notebooks/alice"])
        self.assertEqual(suppressed, roles)  # nothing is waiting for an offer

    def test_a_task_of_another_framework_is_not_adopted(self):
        fw = self.framework()
        fw.adopt(ServerState(framework_id="fw-1", task_id="t1"))
        self.assertFalse(fw.adopt(ServerState(framework_id="fw-2", task_id="t2")))
        self.assertIsNone(fw.task("t2"))

    def test_a_role_is_dropped_once_its_task_ended(self):
        fw = self.framework()
        fw.adopt(ServerState(framework_id="fw-1", task_id="t1", role="notebooks/alice"))
        fw.task("t1").state = common_pb2.TASK_KILLED
        self.assertEqual(fw._desired_roles(), (["notebooks"], ["notebooks"]))


class MasterListTests(unittest.TestCase):
    def test_a_list_of_masters_is_parsed(self):
        self.assertEqual(FrameworkSettings.parse_masters(" m1:5050, m2:5050 "), ("m1:5050", "m2:5050"))

    def test_a_malformed_address_is_refused_with_an_example(self):
        with self.assertRaisesRegex(ValueError, "'m1' is not HOST:PORT"):
            FrameworkSettings.parse_masters("m1")
        with self.assertRaisesRegex(ValueError, "SCHED_MASTER"):
            FrameworkSettings.parse_masters("")


if __name__ == "__main__":
    unittest.main()
