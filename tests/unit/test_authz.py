"""Authorization (api/authz.py) and identity claims (api/identity.py), as pure functions:
who may do what to which refund, and who a token says the caller is."""

from __future__ import annotations

from typing import Any

import pytest

from api.authz import Action, OrderFacts, RefundFacts, decide
from api.config import ApiConfig
from api.identity import Principal, PrincipalKind, principal_from
from api.limits import RateLimiter
from api.problems import Kind, ProblemError
from client.policy_source import load_policy
from client.settings import PROJECT_ROOT
from workflows.policy import parse_policy, policy_for

V3 = parse_policy(load_policy(PROJECT_ROOT / "policies", "standard-v3").document)
CONFIG = ApiConfig(issuer="https://issuer.test", jwks_url="", audience="refundflow-api")


def staff(name: str, *roles: str) -> Principal:
    return Principal(name, CONFIG.issuer, PrincipalKind.STAFF, frozenset(roles))


def customer(name: str) -> Principal:
    return Principal(name, CONFIG.issuer, PrincipalKind.CUSTOMER)


def service(name: str, *scopes: str) -> Principal:
    return Principal(name, CONFIG.issuer, PrincipalKind.SERVICE, scopes=frozenset(scopes))


WAREHOUSE = Principal("warehouse", CONFIG.issuer, PrincipalKind.WAREHOUSE, frozenset({"warehouse"}))


def refund(requested_by: str = "cust_1", amount: int = 25000) -> RefundFacts:
    return RefundFacts("rf_" + "0" * 24, requested_by, amount, "USD", V3)


def test_customers_see_and_withdraw_only_their_own_refunds() -> None:
    own, other = customer("cust_1"), customer("cust_2")
    for action in (Action.TRACK, Action.CANCEL):
        assert decide(own, action, refund()).allowed
        refused = decide(other, action, refund())
        assert not refused.allowed and "not one of yours" in refused.reason
    # Access is the verified subject exactly: CUST_1, or cust_1 with a space, is another
    # person, who reads nothing of cust_1's (a trial read cust_42's refunds as CUST_42).
    for lookalike in ("CUST_1", "cust_1 ", "Cust_1"):
        assert not decide(customer(lookalike), Action.TRACK, refund("cust_1")).allowed
        assert not decide(customer(lookalike), Action.REQUEST, requested_by="cust_1").allowed


@pytest.mark.parametrize(
    "action",
    [Action.READ, Action.AUDIT, Action.REVIEW, Action.EVENTS, Action.APPROVE, Action.REJECT,
     Action.RECEIVED, Action.OPERATOR_RETRY, Action.OPERATOR_CANCEL,
     Action.OPERATOR_PAID_ELSEWHERE],
)  # fmt: skip
def test_a_customer_may_not_act_as_staff_even_on_their_own_refund(action: Action) -> None:
    assert not decide(customer("cust_1"), action, refund("cust_1")).allowed


def test_a_customer_refused_the_review_is_told_what_it_is() -> None:
    said = decide(customer("cust_1"), Action.REVIEW, refund("cust_1")).reason
    assert said == (  # it said "may not read the audit trail" (a trial)
        "a customer may not read what a reviewer weighs (the order's ledger, the requester's"
        " other refunds)"
    )


def test_customers_ask_and_list_only_in_their_own_name() -> None:
    me = customer("cust_1")
    assert decide(me, Action.REQUEST, requested_by="cust_1").allowed
    assert not decide(me, Action.REQUEST, requested_by="cust_2").allowed
    assert not decide(me, Action.LIST, requested_by="cust_2").allowed
    assert decide(me, Action.LIST).allowed


def test_customers_ask_only_about_their_own_orders_and_staff_only_for_its_customer() -> None:
    mine, nobodys = OrderFacts("ord_1", "cust_1"), OrderFacts("ord_2", None)
    for action in (Action.REQUEST, Action.ELIGIBILITY):
        assert decide(customer("cust_1"), action, requested_by="cust_1", order=mine).allowed
        lookalike = decide(customer("Cust_1"), action, requested_by="Cust_1", order=mine)
        assert lookalike.reason == "order ord_1 is not one of yours"
        refused = decide(customer("cust_2"), action, requested_by="cust_2", order=mine)
        assert refused.reason == "order ord_1 is not one of yours"
        # An order that does not say whose it is: no customer may ask about it.
        assert not decide(customer("cust_1"), action, requested_by="cust_1", order=nobodys).allowed
        for who in (staff("li", "lead"), service("checkout", "refunds:write")):
            assert decide(who, action, requested_by="cust_1", order=mine).allowed
            assert decide(who, action, requested_by="cust_9", order=nobodys).allowed
            other = decide(who, action, requested_by="cust_2", order=mine)
            assert not other.allowed and "ord_1 is cust_1's" in other.reason
    # The order is weighed only once the caller may ask at all.
    assert "warehouse may not" in decide(WAREHOUSE, Action.REQUEST, order=mine).reason


def test_approval_authority_comes_from_the_pinned_policy() -> None:
    alice, li, fang = staff("alice", "support"), staff("li", "lead"), staff("fang", "finance")
    refused = decide(alice, Action.APPROVE, refund(amount=25000))
    assert not refused.allowed
    assert refused.reason.startswith("alice (support) may approve up to 200.00 USD")
    assert decide(alice, Action.APPROVE, refund(amount=20000)).allowed
    # Less than the refund, within her limit, still decides the whole 250.00 USD.
    cut = decide(alice, Action.APPROVE, refund(amount=25000), amount=20000)
    assert cut.reason == (
        "alice (support) may approve up to 200.00 USD; approving 250.00 USD needs the lead"
        " role (approving less than its 250.00 USD decides all of it)"
    )
    assert decide(li, Action.APPROVE, refund(amount=25000), amount=20000).allowed
    assert decide(li, Action.APPROVE, refund(amount=25000)).allowed
    assert not decide(li, Action.APPROVE, refund(amount=150000)).allowed
    assert decide(fang, Action.APPROVE, refund(amount=150000)).allowed
    # More than the refund is for the workflow to refuse (409, a trial: this was a 403, as
    # if a role's limit), once the approver has the authority for the refund; one without
    # it is told about the authority.
    assert decide(li, Action.APPROVE, refund(amount=30000), amount=30001).allowed
    above = decide(alice, Action.APPROVE, refund(amount=30000), amount=30001)
    assert above.reason.startswith("alice (support) may approve up to 200.00 USD")
    # The most senior approving role held is the one acted in.
    assert staff("x", "support", "lead").approver_role == "lead"


def test_approving_a_closed_refund_is_left_to_the_workflow_to_refuse_as_closed() -> None:
    # Not "more than the 150.00 USD of this refund": the refund is closed, whatever the amount.
    paid = RefundFacts("rf_" + "0" * 24, "cust_1", 15000, "USD", V3, closed=True)
    assert decide(staff("li", "lead"), Action.APPROVE, paid, amount=90000).allowed


def test_a_refund_in_a_currency_is_approved_within_that_currencys_authority() -> None:
    v4 = load_policy(PROJECT_ROOT / "policies", "standard-v4").document
    yen = RefundFacts("rf_" + "0" * 24, "cust_1", 30001, "JPY", policy_for(v4, "JPY"))
    assert decide(staff("sam", "support"), Action.APPROVE, yen).reason == (
        "sam (support) may approve up to 30000 JPY; approving 30001 JPY needs the lead role"
    )
    assert decide(staff("li", "lead"), Action.APPROVE, yen).allowed


def test_any_reviewer_role_rejects_at_any_amount_as_docs_identity_says() -> None:
    """A rejection moves no money (docs/identity.md; a trial read the docs as limiting it)."""
    large = RefundFacts("rf_" + "0" * 24, "cust_1", 255000, "USD", V3)
    assert not decide(staff("alice", "support"), Action.APPROVE, large).allowed
    assert decide(staff("alice", "support"), Action.REJECT, large).allowed


def test_nobody_approves_or_rejects_a_refund_they_requested() -> None:
    bob = staff("bob", "support")
    for action in (Action.APPROVE, Action.REJECT):
        refused = decide(bob, action, refund(requested_by="Bob", amount=1000))
        assert not refused.allowed and "bob requested this refund" in refused.reason


def test_operator_and_warehouse_actions_need_their_roles() -> None:
    omar, li = staff("omar", "operator"), staff("li", "lead")
    for action in (Action.OPERATOR_RETRY, Action.OPERATOR_CANCEL, Action.OPERATOR_PAID_ELSEWHERE):
        assert decide(omar, action, refund()).allowed
        assert not decide(li, action, refund()).allowed
        assert not decide(WAREHOUSE, action, refund()).allowed
    assert decide(WAREHOUSE, Action.RECEIVED, refund()).allowed
    assert not decide(li, Action.RECEIVED, refund()).allowed
    assert not decide(omar, Action.APPROVE, refund(amount=100)).allowed
    assert not decide(WAREHOUSE, Action.APPROVE, refund(amount=100)).allowed


def test_services_act_by_scope_and_name_the_customer() -> None:
    writer = service("checkout", "refunds:write")
    reader = service("reporting", "refunds:read")
    assert decide(writer, Action.REQUEST, requested_by="cust_1").allowed
    assert not decide(writer, Action.REQUEST).allowed  # for whom?
    assert not decide(reader, Action.REQUEST, requested_by="cust_1").allowed
    assert decide(reader, Action.AUDIT, refund()).allowed
    for principal in (writer, reader):
        assert not decide(principal, Action.APPROVE, refund(amount=100)).allowed
    # Said as who may not, not as token scopes (a trial read "scope refunds:read
    # refunds:write may not approve refunds").
    refused = decide(writer, Action.APPROVE, refund(amount=100)).reason
    assert refused.startswith("checkout is a service: services may not approve"), refused
    lacking = decide(reader, Action.REQUEST, requested_by="cust_1").reason
    assert lacking.startswith("reporting's token (scopes: refunds:read) may not"), lacking


KEYCLOAK = ApiConfig(
    issuer="https://kc.test/realms/shop",
    jwks_url="",
    audience="refundflow-api",
    roles_claim="realm_access.roles",
    subject_claim="preferred_username",
)


def test_roles_and_subject_come_from_the_configured_claims() -> None:
    claims = {
        "iss": KEYCLOAK.issuer,
        "sub": "0b5c-uuid",
        "preferred_username": "li",
        "realm_access": {"roles": ["offline_access", "lead"]},
        "roles": ["finance"],  # not the configured claim: ignored
    }
    who = principal_from(claims, KEYCLOAK)
    assert (who.subject, who.kind, who.roles) == ("li", PrincipalKind.STAFF, frozenset({"lead"}))
    assert who.issuer == KEYCLOAK.issuer


def test_namespaced_claims_scope_lists_and_customers() -> None:
    auth0 = ApiConfig(
        issuer="https://shop.eu.auth0.com",
        jwks_url="",
        audience="a",
        roles_claim="https://refundflow.example/roles",
        scope_claim="scp",
    )
    base = {"iss": auth0.issuer, "sub": "auth0|abc@x"}
    staff_claims = {**base, "https://refundflow.example/roles": ["support"]}
    assert principal_from(staff_claims, auth0).kind is PrincipalKind.STAFF
    svc = principal_from({**base, "scp": ["refunds:write"]}, auth0)
    assert svc.kind is PrincipalKind.SERVICE
    person = principal_from(base, auth0)
    assert person.kind is PrincipalKind.CUSTOMER
    assert person.actor == "auth0.abc.x"  # a handle the audit accepts


def test_a_token_without_a_subject_is_unauthorized() -> None:
    with pytest.raises(ProblemError) as raised:
        principal_from({"iss": CONFIG.issuer, "sub": " "}, CONFIG)
    assert raised.value.kind is Kind.UNAUTHORIZED


@pytest.mark.parametrize("padded", ["cust_1 ", " cust_1", "cust_1\t", "cust_1\n"])
def test_a_subject_with_spaces_around_it_is_nobody_not_the_trimmed_customer(padded: str) -> None:
    """A trial signed `cust_x ` and read cust_x's refunds: the subject was trimmed."""
    with pytest.raises(ProblemError) as raised:
        principal_from({"iss": CONFIG.issuer, "sub": padded}, CONFIG)
    assert raised.value.kind is Kind.UNAUTHORIZED
    assert raised.value.detail == "the token's subject has spaces around it"


def test_the_rate_limit_refills_and_says_when_to_come_back() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=2, clock=lambda: now[0])
    limiter.take("a")
    limiter.take("a")
    with pytest.raises(ProblemError) as raised:
        limiter.take("a")
    assert raised.value.kind is Kind.RATE_LIMITED
    assert raised.value.headers == {"Retry-After": "1"}
    limiter.take("b")  # per principal
    now[0] = 1.0
    limiter.take("a")


def test_the_rate_limiter_forgets_principals_whose_buckets_refilled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from api import limits

    monkeypatch.setattr(limits, "MAX_BUCKETS", 3)
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=1, clock=lambda: now[0])
    for key in ("a", "b", "c"):
        limiter.take(key)
    now[0] = 10.0
    limiter.take("d")  # a, b and c are full again: forgotten, not kept forever
    assert set(limiter._buckets) == {"d"}


@pytest.mark.parametrize(
    ("claims", "said"),
    [
        ({"scope": "refund:write"}, "'scope' claim holds 'refund:write', not as refundflow"
         " names it: did you mean 'refunds:write'?"),
        ({"scope": "openid refunds.read"}, "did you mean 'refunds:read'?"),
        ({"scope": "Refundflow:Write"}, "did you mean 'refunds:write'?"),
        ({"roles": ["Lead"]}, "did you mean 'lead'?"),
        ({"roles": ["support "]}, "did you mean 'support'?"),
        ({"roles": ["WAREHOUSE"]}, "did you mean 'warehouse'?"),
        # One right scope does not hide a misspelled one (a trial: taken as read-only).
        ({"scope": "refunds:read refund:write"}, "did you mean 'refunds:write'?"),
        # A scope among the roles (Entra's app roles), and the other way round.
        ({"roles": ["refunds:write"]}, "'roles' claim holds 'refunds:write': it belongs in"
         " 'scope'"),
        ({"scope": "lead"}, "it belongs in 'roles'"),
    ],
)  # fmt: skip
def test_a_misspelled_or_misplaced_role_or_scope_is_refused_not_taken_for_a_customer(
    claims: dict[str, object], said: str
) -> None:
    """A trial: a service token with `refund:write` was a customer's, and every order it
    asked about was "unknown"."""
    with pytest.raises(ProblemError) as raised:
        principal_from({"iss": CONFIG.issuer, "sub": "checkout", **claims}, CONFIG)
    assert raised.value.kind is Kind.FORBIDDEN
    assert said in raised.value.detail, raised.value.detail


@pytest.mark.parametrize(
    "shops_own",
    [
        {"scope": "openid profile email offline_access"},
        {"roles": ["offline_access", "uma_authorization", "default-roles-shop"]},
        # A review: a looser likeness refused these customers of real shops.
        {"scope": "openid returns:read returns.write Returns.Read rewards:write funds:read"},
        {"scope": "refunds refund:request refund-watch"},
        {"roles": ["supporter", "leader", "leads", "cooperator", "warehouses", "suport"]},
        # refundflow's words where it does not read them: logged, never refused (a review:
        # a Keycloak realm role `support` of another app, an Auth0 customer permission).
        {"scp": ["refunds:write"]},
        {"permissions": ["refunds:write"], "scope": "openid profile"},
        {"groups": ["support"]},
    ],
)
def test_a_customers_own_roles_and_scopes_leave_it_a_customer(shops_own: dict[str, Any]) -> None:
    claims = {"iss": CONFIG.issuer, "sub": "cust_1", **shops_own}
    assert principal_from(claims, CONFIG).kind is PrincipalKind.CUSTOMER


def test_one_scope_of_ours_is_enough() -> None:
    claims = {"iss": CONFIG.issuer, "sub": "checkout"}
    granted = {**claims, "scope": "openid refund:write refunds:write"}  # one right is enough
    assert principal_from(granted, CONFIG).kind is PrincipalKind.SERVICE


ENTRA = ApiConfig(
    issuer="https://login.microsoftonline.com/t/v2.0", jwks_url="", audience="api://refundflow",
    roles_claim="roles", scope_claim="roles",
)  # fmt: skip


@pytest.mark.parametrize(
    ("config", "claims", "kind"),
    [
        # Entra ID as docs/identity.md sets it up: roles and scopes in one claim (a review:
        # every staff and service token was refused as "in the wrong claim").
        (ENTRA, {"roles": ["lead"]}, PrincipalKind.STAFF),
        (ENTRA, {"roles": ["refunds:read"]}, PrincipalKind.SERVICE),
        (ENTRA, {"roles": ["operator", "refunds:write"]}, PrincipalKind.STAFF),
        # Keycloak reading client roles while a realm role of another app is `support`.
        (KEYCLOAK, {"realm_access": {"roles": ["offline_access"]}, "groups": ["support"],
                   "preferred_username": "someone"},
         PrincipalKind.CUSTOMER),
        # A misspelled role beside one that holds (Okta's groups in capitals): left be.
        (CONFIG, {"roles": ["lead", "Support"]}, PrincipalKind.STAFF),
        (CONFIG, {"roles": ["lead", "offline_access"], "scope": "openid profile"},
         PrincipalKind.STAFF),
        # A stray value in the other claim beside a role that holds (a trial: refused).
        (CONFIG, {"roles": ["support"], "scope": "openid refund:write"}, PrincipalKind.STAFF),
        (CONFIG, {"roles": ["lead"], "scope": "openid lead"}, PrincipalKind.STAFF),
    ],
)  # fmt: skip
def test_real_providers_tokens_are_what_they_say(
    config: ApiConfig, claims: dict[str, Any], kind: PrincipalKind
) -> None:
    who = principal_from({"iss": config.issuer, "sub": "someone", **claims}, config)
    assert who.kind is kind


def test_a_token_without_the_configured_subject_claim_is_nobody() -> None:
    """A trial: under Keycloak's preferred_username, a token without it fell back to `sub`:
    the same person under another name approved the refund they had submitted."""
    claims = {"iss": KEYCLOAK.issuer, "sub": "f81d4fae", "realm_access": {"roles": ["lead"]}}
    with pytest.raises(ProblemError) as raised:
        principal_from(claims, KEYCLOAK)
    assert raised.value.kind is Kind.UNAUTHORIZED
    assert raised.value.detail == "the token names no subject (its 'preferred_username' claim)"
    named = principal_from({**claims, "preferred_username": "li"}, KEYCLOAK)
    assert named.subject == "li"
