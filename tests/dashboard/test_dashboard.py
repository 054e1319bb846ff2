"""``/dashboard`` in a real browser against a real tidings with real traffic: signing in, the overview's numbers, the
live tail, retrying a failed delivery, lookups, the cluster, the keyboard, and a phone's width. Each view is saved as
a screenshot at a desktop's and a phone's width in ``tests/dashboard/artifacts/``."""

from __future__ import annotations

import os

from playwright.async_api import Page, expect

from tests.conftest import ROOT_KEY, merge
from tests.dashboard.conftest import ARTIFACTS, DESKTOP, PHONE
from tests.dispatch.conftest import yunpian_config, yunpian_emulator  # noqa: F401 - a fixture these tests use
from tests.helpers import TEST_CODE, TEST_CONFIG, TEST_NUMBER, eventually, finished
from tests.push.conftest import SECRET, receiver, subscribe  # noqa: F401 - a fixture these tests use

FAST = merge(TEST_CONFIG, {"stats": {"flush_every": 0.05}, "verify": {"resend_cooldown": 0}})


async def open_dashboard(page: Page, api, key: str = ROOT_KEY) -> None:
    await page.goto(api.base_url.rstrip("/") + "/dashboard")
    await sign_in(page, key)
    await expect(page.get_by_role("navigation", name="Views")).to_be_visible()


async def sign_in(page: Page, key: str) -> None:
    await page.get_by_label("API key").fill(key)
    await page.get_by_role("button", name="Sign in").click()


async def view(page: Page, name: str) -> None:
    await page.get_by_role("navigation", name="Views").get_by_role("button", name=name).click()


async def snap(page: Page, name: str) -> None:
    """A screenshot at a desktop's width and at a phone's, where the page must not scroll sideways."""
    ARTIFACTS.mkdir(exist_ok=True)
    await page.set_viewport_size(DESKTOP)
    await page.wait_for_timeout(150)  # the charts redraw to the new width
    await page.screenshot(path=ARTIFACTS / f"{name}-desktop.png", full_page=True)
    await page.set_viewport_size(PHONE)
    await page.wait_for_timeout(150)
    overflow = await page.evaluate("document.scrollingElement.scrollWidth - innerWidth")
    assert overflow <= 0, f"{name}: the page is {overflow} px wider than a phone"
    await page.screenshot(path=ARTIFACTS / f"{name}-phone.png", full_page=True)
    await page.set_viewport_size(DESKTOP)


async def new_key(api, *scopes: str) -> str:
    answer = await api.post("/v1/keys", {"name": "dashboard", "scopes": list(scopes)})
    assert answer.status == 201, answer.body
    return answer.body["key"]


async def test_sign_in_with_a_key_and_a_wrong_one_is_refused(serve, page):
    api = await serve()
    reader, sender = await new_key(api, "read"), await new_key(api, "send")
    await page.goto(api.base_url.rstrip("/") + "/dashboard")
    await sign_in(page, sender)
    await expect(page.get_by_role("alert")).to_contain_text("That key lacks the read scope")
    await sign_in(page, "tk_not-a-key-0123456789")
    await expect(page.get_by_role("alert")).to_contain_text("That key was refused (401)")
    await snap(page, "sign-in")
    assert await page.get_by_role("navigation", name="Views").is_hidden()
    assert await page.evaluate("sessionStorage.length") == 0

    await sign_in(page, reader)  # read is enough to see
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    assert await page.get_by_label("API key").input_value() == "", "the key is not left in the field"
    assert await page.evaluate("Object.values(sessionStorage)") == [reader]
    assert reader not in await page.content(), "the key is never shown"
    await page.reload()
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()  # kept for the tab's session

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert await page.evaluate("sessionStorage.length") == 0


async def test_the_overview_counts_the_traffic(serve, receiver, page):  # noqa: F811
    good, bad = await receiver(), await receiver(status=404)
    api = await serve(FAST)
    for number in ("+447700900001", "+447700900002", TEST_NUMBER):
        assert (await api.post("/v1/verifications", {"to": number})).status == 201
    assert (await api.post("/v1/verifications/check", {"to": TEST_NUMBER, "code": TEST_CODE})).body["valid"]
    await subscribe(api, good, ["a", "b"], topics=["t"])
    await subscribe(api, bad, ["c"], topics=["t"])
    sent = await api.post("/v1/messages", {"topic": "t", "body": "hi", "channels": ["webhook", "stream"]})
    await finished(api, sent.body["id"])

    async def counted() -> bool:
        totals = (await api.get("/v1/stats")).body["totals"]
        return totals["deliveries"].get("webhook") == {"delivered": 2, "failed": 1} and "console" in totals["sends"]

    await eventually(counted)
    await open_dashboard(page, api)
    expected = {
        "verifications.started": "3",
        "verifications.approved": "1",
        "verifications.failed": "0",
        "verifications.conversion": "33.3%",
        "deliveries.delivered": "5",  # 2 webhooks, 3 streams
        "deliveries.failed": "1",
        "sends.ok": "4",  # 2 codes through the console provider, 2 webhooks
        "sends.error": "1",
        "circuits.opened": "0",
    }
    for range_ in ("1 h", "24 h", "7 d"):
        await page.get_by_role("group", name="Time range").get_by_role("button", name=range_).click()
        for name, value in expected.items():
            await expect(page.locator(f'#totals [data-stat="{name}"] .n')).to_have_text(value)
        await expect(page.locator('[data-table="deliveries"] tbody')).to_contain_text("webhook21")
        await expect(page.locator('[data-table="deliveries"] tbody')).to_contain_text("stream30")
        await expect(page.locator('[data-table="sends"] tbody')).to_contain_text("console20")
    await page.get_by_role("group", name="Time range").get_by_role("button", name="1 h").click()
    # codes, conversion, 2 channels, 2 providers and the circuits, each drawn
    await expect(page.locator("#charts figure svg")).to_have_count(7)
    await expect(page.locator('#now [data-stat="nodes"] .n')).to_have_text("1")
    await expect(page.locator('#now [data-stat="queued"] .n')).to_have_text("0")
    await snap(page, "overview")


async def test_the_live_tail_shows_sends_as_they_happen(serve, page):
    api = await serve(FAST)
    await open_dashboard(page, api)
    await view(page, "Live tail")
    await expect(page.locator("#tail-msg")).to_have_attribute("data-state", "live")
    started = await api.post("/v1/verifications", {"to": "+447700900003"})
    row = page.locator(f'#tail-rows tr[data-ref="{started.body["id"]}"]')
    await expect(row).to_contain_text("verification")
    await expect(row).to_contain_text("console")
    await expect(row).to_contain_text("delivered")

    await page.get_by_role("button", name="Pause").click()
    again = await api.post("/v1/verifications", {"to": "+447700900004"})
    await expect(page.locator("#tail-msg")).to_contain_text("1 new event held back")
    assert await page.locator(f'#tail-rows tr[data-ref="{again.body["id"]}"]').count() == 0
    await page.get_by_role("button", name="Resume").click()
    await expect(page.locator("#tail-rows tr").first).to_have_attribute("data-ref", again.body["id"])
    await snap(page, "tail")

    await row.get_by_role("button", name=started.body["id"]).click()  # a ref opens its lookup
    card = page.locator(f'[data-verification="{started.body["id"]}"]')
    await expect(card).to_contain_text("None: no provider refused or failed a send.")


async def test_a_failed_delivery_is_retried_from_the_page(serve, receiver, page):  # noqa: F811
    hooks = await receiver(status=500)
    api = await serve({"push": {"max_attempts": 1}})
    await subscribe(api, hooks, ["ada"])
    sent = await api.post("/v1/messages", {"to": ["ada"], "title": "Hi", "channels": ["webhook"]})
    assert (await finished(api, sent.body["id"]))["counts"]["failed"] == 1
    reader = await new_key(api, "read")
    await open_dashboard(page, api, reader)
    await view(page, "Failed")
    row = page.locator(f'#failed-rows tr[data-message="{sent.body["id"]}"]')
    await expect(row).to_contain_text("ada")
    await expect(row).to_contain_text("webhook")
    await expect(row.locator("td.err")).not_to_be_empty()  # the last error, as the store has it
    await row.get_by_role("button", name="Retry").click()
    await expect(row.locator("output")).to_contain_text("Refused: retrying needs a key with the send scope")
    await snap(page, "failed")

    await page.get_by_role("button", name="Sign out").click()
    await sign_in(page, ROOT_KEY)
    await expect(row).to_be_visible()  # back on the same view
    hooks.receiver.status = None  # the receiver is fixed
    await row.get_by_role("button", name="Retry").click()
    await expect(row.locator("output")).to_contain_text("Retried: 1")
    await expect(row.locator("output")).to_contain_text("done: delivered 1, failed 0", timeout=15_000)
    assert (await api.get(f"/v1/messages/{sent.body['id']}")).body["counts"]["delivered"] == 1
    await page.get_by_role("button", name="Refresh").click()
    await expect(page.locator("#failed-msg")).to_have_text("No failed delivery.")


async def test_lookup_by_id_by_number_and_of_a_subscriber(serve, receiver, page):  # noqa: F811
    hooks = await receiver()
    api = await serve(FAST)
    first = await api.post("/v1/verifications", {"to": "+447700900123"})
    again = await api.post("/v1/verifications", {"to": "+447700900123"})  # the same code, sent again
    assert again.body["id"] == first.body["id"] and again.body["send_count"] == 2
    test = await api.post("/v1/verifications", {"to": TEST_NUMBER})
    await api.post("/v1/verifications/check", {"to": TEST_NUMBER, "code": TEST_CODE})
    await subscribe(api, hooks, ["ada", "1234567"])
    sent = await api.post("/v1/messages", {"to": ["ada"], "title": "Hi", "channels": ["webhook"]})
    await finished(api, sent.body["id"])

    await open_dashboard(page, api)
    await view(page, "Lookup")
    search = page.get_by_label("Verification id, message id, phone number, email address or subscriber id")

    await search.fill(test.body["id"])
    await search.press("Enter")
    card = page.locator(f'[data-verification="{test.body["id"]}"]')
    await expect(card).to_contain_text("approved")
    await expect(card).to_contain_text(TEST_NUMBER)
    await expect(card).to_contain_text("yes: nothing is sent")
    assert TEST_CODE not in await card.inner_text(), "a code is never shown"

    await search.fill("+44 7700 900123")  # as an operator would type it
    await search.press("Enter")
    found = page.locator(f'[data-table="verifications"] tr[data-verification="{first.body["id"]}"]')
    await expect(found).to_contain_text("pending")
    await expect(found.locator('td[data-label="Sends"]')).to_have_text("2")
    await expect(page.locator("#lookup-msg")).to_contain_text("1 verification sent to +44 7700 900123")
    await snap(page, "lookup-number")

    await search.fill(sent.body["id"])
    await search.press("Enter")
    await expect(page.locator(f'[data-message="{sent.body["id"]}"]')).to_contain_text("delivered")

    await search.fill("ada")
    await search.press("Enter")
    subscriber = page.locator('[data-subscriber="ada"]')
    await expect(subscriber).to_contain_text(f"{hooks.url}/hook/ada")
    assert SECRET not in await page.content(), "a webhook's secret is never shown"
    await snap(page, "lookup-subscriber")

    await search.fill("1234567")  # a number, but no verification was sent to it: a subscriber's id
    await search.press("Enter")
    await expect(page.locator('[data-subscriber="1234567"]')).to_contain_text(f"{hooks.url}/hook/1234567")

    await search.fill("nobody")
    await search.press("Enter")
    await expect(page.locator("#lookup-msg")).to_contain_text("Nothing found for nobody")


async def test_why_a_user_got_no_code(serve, yunpian_emulator, page):  # noqa: F811
    """The question operators bring: a number that got nothing; its verification says which provider failed how."""
    sms = await yunpian_emulator(fail_first=1000)
    config = merge(FAST, yunpian_config(sms.url))
    api = await serve(merge(config, {"dispatch": {"retry_base_delay": 0.05, "retry_max_delay": 0.1}}))
    started = await api.post("/v1/verifications", {"to": "+8613800138000"})

    async def failed_twice() -> bool:
        return len((await api.get(f"/v1/verifications/{started.body['id']}/failures")).body["failures"]) >= 2

    await eventually(failed_twice)
    await open_dashboard(page, api)
    await view(page, "Lookup")
    search = page.get_by_label("Verification id, message id, phone number, email address or subscriber id")
    await search.fill("+86 138 0013 8000")
    await search.press("Enter")
    row = page.locator(f'tr[data-verification="{started.body["id"]}"]')
    await expect(row.locator('td[data-label="Delivered"]')).to_have_text("0 of 1")
    await row.get_by_role("button", name=started.body["id"]).click()
    sends = page.locator('[data-table="failed-sends"]')
    await expect(sends).to_contain_text("yunpian")
    await expect(sends).to_contain_text("transient")
    await snap(page, "lookup-failed-sends")


async def test_the_cluster_the_keyboard_and_a_server_without_a_live_tail(serve, page):
    api = await serve()
    # and a server without the live tail (an older one): the page says so rather than failing
    await page.route("**/v1/events", lambda route: route.fulfill(status=404, json={"error": {"code": "not_found"}}))
    await open_dashboard(page, api)
    await page.reload()  # signed in still; the keyboard starts from the top of the page
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    await page.keyboard.press("Tab")
    focused = page.locator(":focus")
    await expect(focused).to_have_text("Overview")
    assert await focused.evaluate("e => getComputedStyle(e).outlineStyle") == "solid", "focus is visible"
    for name in ("Live tail", "Failed", "Lookup", "Cluster"):
        await page.keyboard.press("Tab")
        await expect(focused).to_have_text(name)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Cluster")).to_be_visible()
    await expect(page.get_by_role("heading", name="Overview")).to_be_hidden()
    node = page.locator('[data-table="nodes"] tbody tr')
    await expect(node).to_have_count(1)
    await expect(node.locator('td[data-label="PID"]')).to_have_text(str(os.getpid()))
    await expect(node.locator('td[data-label="Role"]')).to_have_text("all")
    await expect(page.locator('#cluster-out [data-stat="backend"] .n')).to_have_text("sqlite")
    await snap(page, "cluster")
    for _ in range(3):
        await page.keyboard.press("Shift+Tab")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Live tail")).to_be_visible()
    await expect(page.locator("#tail-msg")).to_contain_text("Not available")
