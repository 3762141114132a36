#!/bin/sh
# Vendor the consoles' front-end packages from the npm registry (development time only:
# nothing here runs when the service runs). Run from anywhere: sh webhooks/static/vendor/build.sh
#
#   govuk-frontend  MIT          compiled CSS (with hmrc-frontend), its ES module JS, images
#   hmrc-frontend   Apache-2.0   compiled into frontend.min.css
#   axe-core        MPL-2.0      axe.min.js, for the browser tests' accessibility gate
#   codemirror      MIT          editor.js bundled into codemirror/editor.min.js (with
#                                @codemirror/lang-yaml, @codemirror/lint and what they use)
#   sass, esbuild   (build tools only, not vendored)
set -eu
GOVUK=6.6.0
HMRC=7.27.0
AXE=4.14.1
SASS=1.108.2
CODEMIRROR=6.0.2
CM_YAML=6.1.3
CM_LINT=6.9.8
ESBUILD=0.28.2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
npm init -y >/dev/null
npm install --no-audit --no-fund --ignore-scripts \
  "govuk-frontend@$GOVUK" "hmrc-frontend@$HMRC" "axe-core@$AXE" "sass@$SASS" \
  "codemirror@$CODEMIRROR" "@codemirror/lang-yaml@$CM_YAML" "@codemirror/lint@$CM_LINT" \
  "esbuild@$ESBUILD" >/dev/null
mods="$work/node_modules"
npx sass --no-source-map --style=compressed --load-path="$mods" \
  --quiet-deps --silence-deprecation=import "$here/frontend.scss" "$here/frontend.min.css" 2>/dev/null
rm -rf "$here/govuk-frontend" "$here/hmrc-frontend" "$here/axe-core" "$here/codemirror"
mkdir -p "$here/govuk-frontend/assets" "$here/hmrc-frontend" "$here/axe-core" "$here/codemirror"
cp "$here/editor.js" "$work/editor.js"
npx esbuild "$work/editor.js" --bundle --minify --format=iife --target=es2020 \
  --legal-comments=none --log-level=warning --outfile="$here/codemirror/editor.min.js"
# Every package in the bundle and its licence (all MIT).
for pkg in "$mods"/codemirror "$mods"/@codemirror/* "$mods"/@lezer/* "$mods"/crelt "$mods"/style-mod "$mods"/w3c-keyname "$mods"/@marijn/*; do
  [ -f "$pkg/package.json" ] || continue
  name=$(node -p "require('$pkg/package.json').name + ' ' + require('$pkg/package.json').version")
  printf '%s\n\n' "== $name" >> "$here/codemirror/LICENSES"
  cat "$pkg/LICENSE" >> "$here/codemirror/LICENSES" 2>/dev/null || echo "(MIT, see its package.json)" >> "$here/codemirror/LICENSES"
  printf '\n\n' >> "$here/codemirror/LICENSES"
done
cp "$mods/govuk-frontend/dist/govuk/govuk-frontend.min.js" "$here/govuk-frontend/"
mkdir -p "$here/govuk-frontend/assets/images"
for image in favicon.ico favicon.svg govuk-crest.svg; do
  cp "$mods/govuk-frontend/dist/govuk/assets/images/$image" "$here/govuk-frontend/assets/images/"
done
cp "$mods/govuk-frontend/package.json" "$here/govuk-frontend/package.json"
cat > "$here/govuk-frontend/LICENSE" <<LICENCE
The MIT License (MIT)

Copyright (c) 2018 Crown Copyright (Government Digital Service)

Permission is hereby granted, free of charge, to any person obtaining a copy of
this software and associated documentation files (the "Software"), to deal in
the Software without restriction, including without limitation the rights to
use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of
the Software, and to permit persons to whom the Software is furnished to do so,
subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS
FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR
COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER
IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN
CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
LICENCE
cp "$mods/hmrc-frontend/LICENSE" "$mods/hmrc-frontend/package.json" "$here/hmrc-frontend/"
cp "$mods/axe-core/axe.min.js" "$mods/axe-core/LICENSE" "$mods/axe-core/package.json" "$here/axe-core/"
[ -f "$mods/axe-core/LICENSE-3RD-PARTY.txt" ] && cp "$mods/axe-core/LICENSE-3RD-PARTY.txt" "$here/axe-core/"
echo "vendored govuk-frontend $GOVUK, hmrc-frontend $HMRC, axe-core $AXE into $here"
