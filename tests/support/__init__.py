"""What every tier of the tests shares, and bench/ with them (plain helpers, no pytest fixtures):

- `factories`: platform payloads and events (`proposal_submitted`, `envelope`, `new_siren`,
  the parties' addresses, the legal documents a provider uploads);
- `waits`: `eventually`, and the mails a test waits for in the SMTP sink (`mails`, `about`);
- `db`: `count` and `rows` of a statement on an engine;
- `months`: month arithmetic (`next_month`, `following`, `last_day`, `due_day`);
- `workers`: a worker with the real activities on its own task queue (`real_worker`);
- `mission`: `MissionDriver` (the platform and the client posting events to one mission) and
  `MissionHarness` (the same, with the database and the SMTP sink);
- `payouts`: `PayoutDriver` (a payout started with the terms a CRA validation computes, and
  the platform's events to it) and `PayoutHarness` (the same, with the rows it refers to);
- `fakes`: the fast tier's activities under the real names, and `fake_worker`;
- `cra`: `CraHarness` (one month's CRA cycle started alone) and its events;
- `gateway`: the platform's side of the gateway tests (`GatewayTestClient`, `month_open`,
  `file_cra`, `validate_cra`, `file_and_validate`, `past_month`, `cra_instants`…).

The pytest fixtures stay in tests/fixtures/ (and tests/conftest.py). A test module never
imports another test module: what two of them share lives here.
"""
