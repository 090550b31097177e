"""Stand-in for ansible-test's get-pip.py bootstrap script (pip's own bootstrap, without a download).

ansible-test creates its sanity venvs with ``--without-pip`` and then downloads get-pip.py from
ci-files.testing.ansible.com, which is not reachable from machines with only PyPI access. Its error
message says to place the script in ``~/.ansible/test/cache/get_pip_<version>.py``; scripts/test.sh
puts this file there. It installs pip with the interpreter's bundled ``ensurepip`` and then the exact
packages ansible-test asked for (e.g. ``pip==25.2``) from PyPI, accepting get-pip's own options.
"""

import subprocess
import sys

GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}

args = [a for a in sys.argv[1:] if a not in GET_PIP_ONLY]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
subprocess.check_call([sys.executable, "-m", "pip", "install", *args])
