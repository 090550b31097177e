#!/usr/bin/python
# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: eventbridge_rules
short_description: Manage many EventBridge rules (event patterns) and their targets in one task
version_added: 0.1.0
description:
  - Ensures many EventBridge rules with event patterns and their targets in one task, for example the rules that
    route interruption events to Karpenter's SQS queue.
author:
  - Karpenter EKS platform maintainers (@karpenter-eks)
options:
  rules:
    description: The rules.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Rule name.
        type: str
        required: true
      event_pattern:
        description: Event pattern, as a dict or JSON text. Required when the rule's state is C(present).
        type: raw
      description:
        description: Description; unchanged when not given.
        type: str
      enabled:
        description: Whether the rule is C(ENABLED) (else C(DISABLED)).
        type: bool
        default: true
      targets:
        description: Targets of the rule (at most 5); unchanged when not given.
        type: list
        elements: dict
        suboptions:
          id:
            description: Target id, unique within the rule.
            type: str
            required: true
          arn:
            description: ARN of the target (for example an SQS queue).
            type: str
            required: true
          role_arn:
            description: IAM role EventBridge uses to reach the target (not needed for SQS with a queue policy).
            type: str
          input:
            description: Constant JSON sent instead of the event (a dict, or JSON text).
            type: raw
          input_path:
            description: JSONPath of the part of the event that is sent.
            type: str
      state:
        description: State of this rule; defaults to the module's O(state).
        type: str
        choices: [present, absent]
  event_bus_name:
    description: Event bus of the rules.
    type: str
    default: default
  purge_targets:
    description: Remove targets of a rule that are not in its C(targets) (only for rules given with C(targets)).
    type: bool
    default: true
  state:
    description: Whether the rules exist; C(absent) removes a rule's targets, then the rule.
    type: str
    default: present
    choices: [present, absent]
extends_documentation_fragment:
  - karpenter_eks.platform.attributes
  - karpenter_eks.platform.attributes.action_group_aws
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
notes:
  - Replaces one amazon.aws.cloudwatchevent_rule task per rule. Reads with one C(events:ListRules) (name prefix
    common to the rules, paginated) and one C(events:ListTargetsByRule) per existing rule. A converged batch sends
    no other request.
  - Event patterns are compared as EventBridge matches them - key order and the order of the values of a match
    list do not count (the operator/value pairs of a C(numeric) match keep theirs).
  - Targets are compared on the fields managed here (C(arn), C(role_arn), C(input), C(input_path)); a target that
    differs is rewritten with exactly those fields.
  - The whole input is validated before any request; an error names the field.
  - With C(--diff), returns one entry per rule that changes, with its pattern, description, state and targets
    before and after.
"""

EXAMPLES = r"""
- name: Route EC2 spot interruption warnings and health events to the interruption queue
  karpenter_eks.platform.eventbridge_rules:
    rules:
      - name: Karpenter-prod-SpotInterruption
        description: Spot interruption warnings for Karpenter
        event_pattern: {source: [aws.ec2], detail-type: [EC2 Spot Instance Interruption Warning]}
        targets:
          - {id: KarpenterInterruptionQueueTarget, arn: "arn:aws:sqs:us-east-1:123456789012:prod"}
      - name: Karpenter-prod-ScheduledChange
        event_pattern: {source: [aws.health], detail-type: [AWS Health Event]}
        targets:
          - {id: KarpenterInterruptionQueueTarget, arn: "arn:aws:sqs:us-east-1:123456789012:prod"}
"""

RETURN = r"""
rules:
  description: One entry per rule, in input order, as it is after the run (as it would be, in check mode).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Rule name.
      type: str
    arn:
      description: Rule ARN (null for a rule only planned in check mode, or absent).
      type: str
    event_pattern:
      description: Event pattern.
      type: dict
    description:
      description: Description.
      type: str
    state:
      description: C(ENABLED) or C(DISABLED).
      type: str
    targets:
      description: Targets (C(Id), C(Arn) and the other managed fields, as the API names them).
      type: list
      elements: dict
    changed:
      description: Whether this rule changed.
      type: bool
    changes:
      description: What changed - C(created), C(event_pattern), C(description), C(state), C(targets) or C(deleted).
      type: list
      elements: str
requests:
  description: Requests sent to EventBridge - their number, and the operations that write (empty on a no-op or in check mode).
  returned: always
  type: dict
  sample: {total: 5, writes: []}
"""

from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws.eventbridge import ensure_rules, validate_rules
from ansible_collections.karpenter_eks.platform.plugins.module_utils.aws.runner import run_aws_module


def main():
    argument_spec = dict(
        rules=dict(
            type="list",
            elements="dict",
            required=True,
            options=dict(
                name=dict(type="str", required=True),
                event_pattern=dict(type="raw"),
                description=dict(type="str"),
                enabled=dict(type="bool", default=True),
                targets=dict(
                    type="list",
                    elements="dict",
                    options=dict(
                        id=dict(type="str", required=True),
                        arn=dict(type="str", required=True),
                        role_arn=dict(type="str"),
                        input=dict(type="raw"),
                        input_path=dict(type="str"),
                    ),
                ),
                state=dict(type="str", choices=["present", "absent"]),
            ),
        ),
        event_bus_name=dict(type="str", default="default"),
        purge_targets=dict(type="bool", default=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    )
    run_aws_module(argument_spec, "events", ensure_rules, validate=validate_rules)


if __name__ == "__main__":
    main()
