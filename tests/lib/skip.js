'use strict';
// Skip a suite whose tools this machine lacks, by the one rule of scripts/test-skip.sh: off CI one
// line saying what is missing and how to run the suite; under CI=true the suite fails instead.
//
//   if (skipSuite(__filename, missingTools(['nginx', 'envsubst']), 'apt-get install nginx-light gettext-base')) return;
//
// (a top-level `return` ends a CommonJS test file before it registers any test)
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const SKIP = path.join(ROOT, 'scripts', 'test-skip.sh');

function onPath(cmd) {
  return (process.env.PATH || '').split(path.delimiter).some((dir) => {
    try {
      fs.accessSync(path.join(dir, cmd), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** The tools of the list that are missing here. `python3-yaml` = python3 that can `import yaml`. */
function missingTools(tools) {
  return tools.filter((tool) => {
    if (tool === 'python3-yaml') return spawnSync('python3', ['-c', 'import yaml'], { stdio: 'ignore' }).status !== 0;
    return !onPath(tool);
  });
}

/**
 * true = skip the suite (the line is printed); false = everything is there, run it.
 * Under CI a missing tool throws, which fails the file.
 */
function skipSuite(file, missing, install) {
  if (!missing.length) return false;
  const suite = path.relative(ROOT, file);
  const r = spawnSync(SKIP, [suite, `${missing.join(', ')} not found`, `${install} && node --test ${suite}`], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`${suite} cannot run here: ${missing.join(', ')} not found`);
  return true;
}

module.exports = { missingTools, skipSuite };
