#!/usr/bin/env python3
"""The README's curl walk-through, run verbatim against a real daemon: only its first two
lines (where the API is and the admin key) are pointed at this test's daemon."""

import json
import os
import re
import subprocess

from harness import ROOT, ApiTestCase, main, psql


class ReadmeWalkThrough(ApiTestCase):
    def test_walk_through_runs_verbatim(self):
        with open(os.path.join(ROOT, "README.md")) as handle:
            readme = handle.read()
        block = re.search(r"<!-- walkthrough:start -->\s*```sh\n(.*?)```\s*<!-- walkthrough:end -->", readme, re.S)
        self.assertIsNotNone(block, "the README lost its walk-through markers")
        script = block.group(1)
        self.assertTrue(script.startswith("API=http://127.0.0.1:8080/api/v1\nADMIN=$(cat var/admin_key)\n"))
        script = script.replace("API=http://127.0.0.1:8080/api/v1", f"API=http://127.0.0.1:{self.daemon.port}/api/v1", 1)
        script = script.replace("ADMIN=$(cat var/admin_key)", f"ADMIN={self.admin}", 1)
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn('"status": "published"', result.stdout)
        self.assertEqual(result.stdout.strip().splitlines()[-2:], ["1", '"Greeter"'])
        self.assertEqual(psql(self.database, "select status from flowgres.apps where name = 'Greeter'"), "published")


class ReadmeTables(ApiTestCase):
    """The README's tables that can drift from the code: they are checked against it here."""

    def section(self, heading):
        text = self.readme()
        start = text.index(heading + "\n")
        end = text.find("\n#", start + len(heading))
        return text[start:end if end != -1 else len(text)]

    def test_the_error_table_is_the_error_list(self):
        codes = json.loads(psql(self.database, "select flowgres.error_codes()"))
        codes = codes.get("items", codes) if isinstance(codes, dict) else codes
        listed = {row[0]: (row[1], int(row[2])) for row in
                  re.findall(r"^\| ([A-Z_]+) \| (FG\d{3}) \| (\d{3}) \|", self.section("## Errors"), re.M)}
        actual = {code["error_code"]: (code["sqlstate"], code["http_status"]) for code in codes}
        self.assertEqual(set(actual) - set(listed), set(), "codes missing from the README's error table")
        self.assertEqual(set(listed) - set(actual), set(), "the README lists codes the product does not have")
        for name, (sqlstate, status) in actual.items():
            self.assertEqual(listed[name], (sqlstate, status), name)
        self.assertNotIn("reserved", self.section("## Errors").lower(), "every listed code is live")

    def test_every_route_is_in_the_routes_table(self):
        _, _, spec = self.call("GET", "/openapi.json")
        routes = self.section("### Routes")
        for path in spec["paths"]:
            literal = [part for part in path.split("/") if part and not part.startswith("{")][-1]
            self.assertIn(literal, routes, f"{path} is missing from the README's routes table")

    def test_the_opening_names_the_extension_version(self):
        with open(os.path.join(ROOT, "extension", "flowgres.control")) as control:
            version = re.search(r"default_version = '([^']+)'", control.read()).group(1)
        opening = self.readme().split("\n## ", 1)[0]
        self.assertIn(f"`flowgres` {version}", opening)
        self.assertNotIn("../shared", self.readme(), "users of the repository have no ../shared")

    def readme(self):
        with open(os.path.join(ROOT, "README.md")) as handle:
            return handle.read()

    def test_every_setting_is_documented_with_its_default(self):
        settings = psql(self.database, "select name || '|' || boot_val from pg_settings where name like 'flowgres.%' order by 1")
        documented = dict(re.findall(r"^\| `(flowgres\.[a-z_]+)` \| ([^|]*?) \|", self.readme(), re.M))
        for line in settings.splitlines():
            name, default = line.split("|", 1)
            self.assertIn(name, documented, f"{name} is missing from the README's Settings table")
            shown = documented[name].strip("'")
            self.assertEqual(shown, default, f"{name}: the README says {documented[name]}, the server {default!r}")
        self.assertEqual(set(documented) - {line.split("|")[0] for line in settings.splitlines()}, set(),
                         "the README documents settings the extension does not have")


if __name__ == "__main__":
    main()
