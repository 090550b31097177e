# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""karpenter_backup's code, plain Python (no Ansible import):

* ``core``: the archive (format, names, redaction, offline checks, retention choice), backup reads and the restore,
  which writes through ``apply.karpenter.run``; errors are ``core.BackupError``.
* ``run``: one function per ``state`` of the module (``do_backup``, ``do_restore``, ``do_verify``, ``do_list``)
  and ``check_params``, the input checks made before anything is read.
* ``s3``: the S3 destination (``S3Store``: SSE-KMS, checksums, retention of our own objects), its calls retried by
  the AWS modules' retry mechanism (``aws.api.retry_policy``).
"""
