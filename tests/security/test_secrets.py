"""Secrets are write-only: a listing's env_vars, an instance's env, a manifest's build env and a webhook's token are
stored and handed to what needs them (the instance process, the webhook), and shown to nobody — not to other
tenants, not to their owner, not in events, the audit log, the hub's log or an error message."""

from __future__ import annotations

import httpx

from tests.conftest import call, new_tenant, ok, unique

MASK = "********"
LISTING_SECRET, INSTANCE_SECRET, MANIFEST_SECRET = "sk-live-listing-5eCr3t", "pw-instance-5eCr3t", "tok-manifest-5eCr3t"


def _published(publisher: httpx.Client) -> dict:
    return ok(call(publisher, "agora.marketplace.publish", agent_name=unique("lst"), repository={"url": "https://example.com/a.git"},
                   build_config={"start_command": "python agent.py", "env_vars": {"API_KEY": LISTING_SECRET}}))  # fmt: skip


def test_a_listing_s_env_values_are_shown_to_nobody_and_reach_the_instance(admin, hub):
    ok(call(admin, "agora.hosting.register_node", name="secrets-node", capacity_cpu=1000, capacity_memory_mb=10_000_000))
    publisher = admin  # a customer's repository must be on a public address, which this machine cannot resolve
    with new_tenant(admin, hub) as customer, new_tenant(admin, hub) as bystander:
        published = _published(publisher)
        assert published["build_config"]["env_vars"] == {"API_KEY": MASK}  # the owner sees the name and the mask
        answers = [call(c, "agora.marketplace.discover", text=published["agent_name"]) for c in (publisher, customer, bystander)]
        for answer in answers:
            assert LISTING_SECRET not in answer.text
            assert ok(answer)["agents"][0]["build_config"]["env_vars"] == {"API_KEY": MASK}

        made = call(customer, "agora.marketplace.create_instance", agent_id=published["listing_id"],
                    instance_config={"env": {"DB_PASSWORD": INSTANCE_SECRET}})  # fmt: skip
        instance_id = ok(made)["instance_id"]
        shown = [made, call(customer, "agora.marketplace.get_instance", instance_id=instance_id),
                 call(customer, "agora.marketplace.list_instances"), call(admin, "agora.marketplace.get_instance", instance_id=instance_id)]  # fmt: skip
        for answer in shown:
            assert ok(answer) and LISTING_SECRET not in answer.text and INSTANCE_SECRET not in answer.text
        assert ok(shown[1])["instance_config"]["env"] == {"DB_PASSWORD": MASK}

        # The node that starts the instance gets the real values (the admin may speak for the node).
        env = ok(call(admin, "agora.hosting.credentials", instance_id=instance_id))["env"]
        assert env["API_KEY"] == LISTING_SECRET and env["DB_PASSWORD"] == INSTANCE_SECRET


def test_a_manifest_s_build_env_is_masked_wherever_the_agent_is_shown(admin, hub):
    with new_tenant(admin, hub) as owner:
        manifest = {"build_config": {"type": "python", "start_command": "run", "env_vars": {"TOKEN": MANIFEST_SECRET}}}
        registered = call(owner, "agora.agents.register", agent_name=unique(), manifest=manifest)
        agent = ok(registered)["agent_id"]
        for answer in (registered, call(owner, "agora.agents.get", agent=agent), call(owner, "agora.query.agents")):
            assert MANIFEST_SECRET not in answer.text, answer.text
        assert ok(call(owner, "agora.agents.get", agent=agent))["manifest"]["build_config"]["env_vars"] == {"TOKEN": MASK}


def test_no_secret_in_the_audit_log_the_hub_s_log_or_an_error(admin, hub):
    _published(admin)
    with new_tenant(admin, hub) as publisher:
        refused = call(publisher, "agora.marketplace.publish", agent_name=unique("lst"), repository={"url": "https://example.com/a.git"},
                       build_config={"start_command": "x", "env_vars": {"API_KEY": LISTING_SECRET, "BAD": 1}})  # fmt: skip
        assert refused.status_code == 422 and LISTING_SECRET not in refused.text
        too_long = call(publisher, "agora.agents.register", agent_name=unique(), description=LISTING_SECRET * 400)
        assert too_long.status_code == 422 and LISTING_SECRET not in too_long.text
    audit = call(admin, "agora.admin.audit", limit=500)
    assert ok(audit) and LISTING_SECRET not in audit.text
    assert LISTING_SECRET not in hub.log_path.read_text(errors="replace")
