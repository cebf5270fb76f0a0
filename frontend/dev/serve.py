"""Dev server for the Diagnosis tab: mimics TensorBoard's iframe page and the plugin routes.

    python3 frontend/dev/serve.py [--port 8765]
    open http://127.0.0.1:8765/m/demo/   (modes: demo empty unrecognised trainonly scale noseries error live pending)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

sys.path.insert(0, os.path.dirname(__file__))
import fake  # noqa: E402

STATIC = os.path.join(os.path.dirname(__file__), "..", "..", "tb_lossdoctor", "static")
# Close to TensorBoard's own policy: no inline scripts, no other hosts.
CSP = ("default-src 'self'; font-src 'self' data:; img-src 'self' data: blob:; object-src 'none'; "
       "style-src 'self' 'unsafe-inline'; connect-src 'self'; script-src 'self' 'unsafe-eval'")

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><base href="/m/{mode}/data/plugin/lossdoctor/">
<script type="module" src="loader.js"></script></head><body></body></html>
"""
LOADER = "import('./index.js').then((m) => m.render());\n"
REPORTS: dict = {}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):  # quiet
        pass

    def send(self, code, body, ctype):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        u = urlparse(self.path)
        parts = u.path.split("/")
        if len(parts) < 3 or parts[1] != "m":
            return self.redirect("/m/demo/")
        mode = parts[2]
        rest = "/".join(parts[3:])
        q = {k: v[0] for k, v in parse_qs(u.query).items()}
        if rest == "":
            return self.send(200, PAGE.format(mode=mode), "text/html; charset=utf-8")
        if rest == "data/plugin/lossdoctor/loader.js":
            return self.send(200, LOADER, "text/javascript")
        if rest == "data/plugin/lossdoctor/index.js":
            with open(os.path.join(STATIC, "index.js"), "rb") as f:
                return self.send(200, f.read(), "text/javascript")
        if rest == "data/plugin/lossdoctor/report":
            if mode == "error":
                return self.send(500, json.dumps({"error": "engine exploded"}), "application/json")
            if mode == "live":  # changes on every request: tests keyed refresh
                import time
                REPORTS["n"] = REPORTS.get("n", 0) + 1
                r = fake.report("demo")
                r["generated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                if REPORTS["n"] % 2 == 0:
                    r["runs"].insert(0, fake.strip([fake.group("new_run_%d" % REPORTS["n"], "nan")])[0])
                for g in r["runs"]:
                    for s in g["series"]:
                        s["points"] += REPORTS["n"]
                return self.send(200, json.dumps(r), "application/json")
            if mode == "pending":  # a first, partial answer (runs still being diagnosed), then the whole report
                REPORTS["pending_n"] = REPORTS.get("pending_n", 0) + 1
                r = fake.report("demo")
                if REPORTS["pending_n"] == 1:
                    waiting = [g["run"] for g in r["runs"][len(r["runs"]) // 2:]]
                    r["runs"] = r["runs"][: len(r["runs"]) // 2]
                    r["pending"] = {"count": len(waiting), "runs": waiting}
                    r["sweep"] = None
                return self.send(200, json.dumps(r), "application/json")
            if mode not in REPORTS:
                REPORTS[mode] = json.dumps(fake.report("demo" if mode == "noseries" else mode))
            return self.send(200, REPORTS[mode], "application/json")
        if rest == "data/plugin/lossdoctor/series":
            if mode == "noseries":
                return self.send(404, "Not found", "text/plain")
            s = fake.series(mode, q.get("run", ""), q.get("tag", ""))
            if s is None:
                return self.send(400, json.dumps({"error": "unknown run/tag"}), "application/json")
            return self.send(200, json.dumps(s), "application/json")
        return self.send(404, "Not found", "text/plain")

    def redirect(self, to):
        self.send_response(302)
        self.send_header("Location", to)
        self.end_headers()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8765)
    a = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    print(f"http://127.0.0.1:{a.port}/m/demo/", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
