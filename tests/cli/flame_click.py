#!/usr/bin/env python3
"""A real mouse click on a flame graph frame in headless Chromium.

  flame_click.py CHROMIUM URL FRAME_ID

Drives Chromium over the DevTools protocol on a pipe (--remote-debugging-pipe:
commands on fd 3, replies on fd 4, each message ended by a NUL byte): opens
URL, finds FRAME_ID's box on the page, presses and releases the left button
at its centre (Input.dispatchMouseEvent, as a user's click arrives), and
prints one JSON object: the frame's drawn width before and after, the svg's
data-zoom, and the graph's width. Exit 0 when the page could be driven, 1
otherwise (the reason on stderr). The test reads the JSON and judges.
"""

import json
import os
import subprocess
import sys
import tempfile
import time


class Browser:
    def __init__(self, chromium, profile):
        to_child_r, self.to_child = os.pipe()
        self.from_child, from_child_w = os.pipe()
        # The child's fd 3 reads our commands, its fd 4 writes the replies.
        def wire():
            os.dup2(to_child_r, 3)
            os.dup2(from_child_w, 4)
        self.proc = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             "--no-first-run", "--user-data-dir=" + profile, "--window-size=1280,2000",
             "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=dict(os.environ, HOME=profile),
            # 3 and 4 as well: the fds closed after preexec_fn are all but these.
            pass_fds=(3, 4, to_child_r, from_child_w), preexec_fn=wire)
        os.close(to_child_r)
        os.close(from_child_w)
        self.next_id = 0
        self.buffer = b""

    def call(self, method, params=None, session=None, timeout=30):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.time() + timeout
        while time.time() < deadline:
            while b"\0" in self.buffer:
                raw, self.buffer = self.buffer.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self.next_id:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply.get("result", {})
            chunk = os.read(self.from_child, 1 << 16)
            if not chunk:
                raise RuntimeError(f"{method}: Chromium closed the pipe")
            self.buffer += chunk
        raise RuntimeError(f"{method}: no reply in {timeout} s")

    def close(self):
        try:
            os.write(self.to_child, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
        except OSError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def evaluate(b, session, expression):
    r = b.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session)
    return r.get("result", {}).get("value")


def main():
    chromium, url, frame = sys.argv[1:4]
    with tempfile.TemporaryDirectory() as profile:
        b = Browser(chromium, profile)
        try:
            target = b.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = b.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
                "sessionId"]
            b.call("Page.enable", session=session)
            b.call("Page.navigate", {"url": url}, session)
            for _ in range(100):
                if evaluate(b, session, "document.body && document.body.dataset.flameReady") == "1":
                    break
                time.sleep(0.1)
            else:
                raise RuntimeError("the page's flame script never ran (no data-flame-ready)")
            box_js = ("(function(){var g=document.getElementById(%s);if(!g)return null;"
                      "g.scrollIntoView({block:'center'});var r=g.querySelector('rect')"
                      ".getBoundingClientRect();return {x:r.x+r.width/2,y:r.y+r.height/2,"
                      "w:r.width,svg:g.ownerSVGElement.getBoundingClientRect().width};})()"
                      % json.dumps(frame))
            box = evaluate(b, session, box_js)
            if box is None:
                raise RuntimeError(f"no frame with id {frame}")
            for kind in ("mousePressed", "mouseReleased"):
                b.call("Input.dispatchMouseEvent",
                       {"type": kind, "x": box["x"], "y": box["y"], "button": "left",
                        "clickCount": 1}, session)
            after = evaluate(b, session, box_js)
            zoom = evaluate(b, session, "document.getElementById(%s).ownerSVGElement"
                                        ".getAttribute('data-zoom')" % json.dumps(frame))
            print(json.dumps({"width_before": box["w"], "width_after": after["w"],
                              "graph_width": after["svg"], "data_zoom": zoom}))
            return 0
        except (RuntimeError, OSError, KeyError, TypeError) as e:
            print(f"flame_click.py: {e}", file=sys.stderr)
            return 1
        finally:
            b.close()


if __name__ == "__main__":
    sys.exit(main())
