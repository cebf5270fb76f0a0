"""Screenshots of the dev server pages (for eyeballing the UI): python3 frontend/dev/shoot.py MODE OUT.png [--dark] [--expand N]"""
import sys

from playwright.sync_api import sync_playwright

ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]


def main():
    mode, out = sys.argv[1], sys.argv[2]
    dark = "--dark" in sys.argv
    expand = int(sys.argv[sys.argv.index("--expand") + 1]) if "--expand" in sys.argv else 0
    port = 8765
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = b.new_page(viewport={"width": 1100, "height": 900}, color_scheme="dark" if dark else "light")
        logs = []
        page.on("console", lambda m: logs.append(f"console.{m.type}: {m.text}"))
        page.on("pageerror", lambda e: logs.append(f"pageerror: {e}"))
        page.on("dialog", lambda d: (logs.append(f"DIALOG {d.message}"), d.dismiss()))
        page.goto(f"http://127.0.0.1:{port}/m/{mode}/")
        page.wait_for_timeout(800)
        heads = page.locator(".ld-finding-head")
        for i in range(min(expand, heads.count())):
            heads.nth(i).click()
        if expand:
            page.wait_for_timeout(800)
            page.locator(".ld-finding-head").nth(0).scroll_into_view_if_needed()
            page.mouse.move(500, 400)
        for extra in sys.argv[3:]:
            if extra.startswith("--type="):
                page.fill("#ld-filter-regex", extra[7:])
                page.wait_for_timeout(300)
        page.screenshot(path=out, full_page="--full" in sys.argv)
        print("\n".join(logs) or "no console output")
        print("cards:", page.locator(".ld-card").count())
        b.close()


if __name__ == "__main__":
    main()
