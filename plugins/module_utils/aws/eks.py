# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Desired-state logic of the EKS/IAM modules (eks_access_entry, eks_pod_identity_association, eks_addon,
iam_oidc_provider).

Each ``ensure_*`` function takes a client whose calls accept ``aws_retry=True`` (amazon.aws
``RetryingBotoClientWrapper`` from ``AnsibleAWSModule.client(..., retry_decorator=AWSRetry.jittered_backoff())``),
the module parameters and ``check_mode``; it reads, compares, writes only what differs (never in check mode) and
returns ``{"changed", <resource>, "before", "after"}`` with the same shape whether anything changed or not.
SDK errors propagate as :class:`api.AwsOperationError` (``api.call``), which names the operation.
"""

from __future__ import annotations

from typing import Any

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict
from ansible_collections.amazon.aws.plugins.module_utils.tagging import compare_aws_tags

from .api import AwsOperationError, call, call_missing_ok


def _sync_tags(client, arn, current, desired, purge, check_mode, tag_param="tags", untag_param="tagKeys"):
    """EKS-style tagging (tag_resource/untag_resource with a resourceArn). Returns True when tags differ."""
    if desired is None:
        return False
    to_set, to_unset = compare_aws_tags(current or {}, desired, purge)
    if not (to_set or to_unset):
        return False
    if not check_mode:
        if to_unset:
            call("untag " + arn, client.untag_resource, resourceArn=arn, **{untag_param: to_unset})
        if to_set:
            call("tag " + arn, client.tag_resource, resourceArn=arn, **{tag_param: to_set})
    return True


def _desired_tags(current, desired, purge):
    if desired is None:
        return dict(current or {})
    out = {} if purge else dict(current or {})
    out.update(desired)
    return out


def _result(changed, key, obj, before, after):
    return {
        "changed": changed,
        key: camel_dict_to_snake_dict(obj or {}, ignore_list=["tags"]),
        "diff": {"before": before, "after": after},
    }


# ---------------------------------------------------------------- EKS access entries


def _access_entry_view(entry):
    if not entry:
        return {}
    return {
        "principal_arn": entry.get("principalArn"),
        "type": entry.get("type"),
        "kubernetes_groups": sorted(entry.get("kubernetesGroups") or []),
        "username": entry.get("username"),
        "tags": dict(entry.get("tags") or {}),
    }


def ensure_access_entry(client: Any, params: dict, check_mode: bool) -> dict:
    cluster, principal = params["cluster_name"], params["principal_arn"]
    what = "access entry of %s in cluster %s" % (principal, cluster)
    found = call_missing_ok(
        "describe " + what,
        client.describe_access_entry,
        "ResourceNotFoundException",
        clusterName=cluster,
        principalArn=principal,
    )
    current = found["accessEntry"] if found else None
    before = _access_entry_view(current)

    if params["state"] == "absent":
        if current and not check_mode:
            call("delete " + what, client.delete_access_entry, clusterName=cluster, principalArn=principal)
        return _result(bool(current), "access_entry", None, before, {})

    groups = params.get("kubernetes_groups")
    username = params.get("username")
    if current is None:
        request = {"clusterName": cluster, "principalArn": principal, "type": params["type"]}
        if groups:
            request["kubernetesGroups"] = groups
        if username:
            request["username"] = username
        if params.get("tags"):
            request["tags"] = params["tags"]
        after = _access_entry_view(dict(request, kubernetesGroups=groups or [], tags=params.get("tags") or {}))
        entry = request
        if not check_mode:
            entry = call("create " + what, client.create_access_entry, **request)["accessEntry"]
        return _result(True, "access_entry", entry, before, after)

    if current.get("type") != params["type"]:
        raise AwsOperationError(
            "The type of the %s is %s, not %s; EKS cannot change it: delete the entry (state=absent) first"
            % (what, current.get("type"), params["type"]),
            None,
        )
    update = {}
    if groups is not None and sorted(groups) != sorted(current.get("kubernetesGroups") or []):
        update["kubernetesGroups"] = groups
    if username and username != current.get("username"):
        update["username"] = username
    changed = bool(update)
    entry = dict(current, **update)
    if update and not check_mode:
        entry = call(
            "update " + what, client.update_access_entry, clusterName=cluster, principalArn=principal, **update
        )["accessEntry"]
    if _sync_tags(
        client, current["accessEntryArn"], current.get("tags"), params.get("tags"), params["purge_tags"], check_mode
    ):
        changed = True
    entry["tags"] = _desired_tags(current.get("tags"), params.get("tags"), params["purge_tags"])
    return _result(changed, "access_entry", entry, before, _access_entry_view(entry))


# ---------------------------------------------------------------- EKS Pod Identity associations


def _association_view(assoc):
    if not assoc:
        return {}
    return {
        "namespace": assoc.get("namespace"),
        "service_account": assoc.get("serviceAccount"),
        "role_arn": assoc.get("roleArn"),
        "tags": dict(assoc.get("tags") or {}),
    }


def ensure_pod_identity_association(client: Any, params: dict, check_mode: bool) -> dict:
    cluster, namespace, sa = params["cluster_name"], params["namespace"], params["service_account"]
    what = "pod identity association of %s/%s in cluster %s" % (namespace, sa, cluster)
    listed = call(
        "list " + what,
        client.list_pod_identity_associations,
        clusterName=cluster,
        namespace=namespace,
        serviceAccount=sa,
    ).get("associations", [])
    current = None
    if listed:
        current = call(
            "describe " + what,
            client.describe_pod_identity_association,
            clusterName=cluster,
            associationId=listed[0]["associationId"],
        )["association"]
    before = _association_view(current)

    if params["state"] == "absent":
        if current and not check_mode:
            call(
                "delete " + what,
                client.delete_pod_identity_association,
                clusterName=cluster,
                associationId=current["associationId"],
            )
        return _result(bool(current), "association", None, before, {})

    if current is None:
        request = {"clusterName": cluster, "namespace": namespace, "serviceAccount": sa, "roleArn": params["role_arn"]}
        if params.get("tags"):
            request["tags"] = params["tags"]
        assoc = dict(request, tags=params.get("tags") or {})
        if not check_mode:
            assoc = call("create " + what, client.create_pod_identity_association, **request)["association"]
        return _result(
            True, "association", assoc, before, _association_view(dict(request, tags=params.get("tags") or {}))
        )

    changed = False
    assoc = dict(current)
    if params["role_arn"] != current.get("roleArn"):
        changed = True
        assoc["roleArn"] = params["role_arn"]
        if not check_mode:
            assoc = call(
                "update " + what,
                client.update_pod_identity_association,
                clusterName=cluster,
                associationId=current["associationId"],
                roleArn=params["role_arn"],
            )["association"]
    if _sync_tags(
        client, current["associationArn"], current.get("tags"), params.get("tags"), params["purge_tags"], check_mode
    ):
        changed = True
    assoc["tags"] = _desired_tags(current.get("tags"), params.get("tags"), params["purge_tags"])
    return _result(changed, "association", assoc, before, _association_view(assoc))


# ---------------------------------------------------------------- EKS add-ons


def _addon_view(addon):
    if not addon:
        return {}
    return {
        "addon_name": addon.get("addonName"),
        "addon_version": addon.get("addonVersion"),
        "service_account_role_arn": addon.get("serviceAccountRoleArn"),
        "configuration_values": addon.get("configurationValues"),
        "tags": dict(addon.get("tags") or {}),
    }


def ensure_addon(client: Any, params: dict, check_mode: bool) -> dict:
    cluster, name = params["cluster_name"], params["name"]
    what = "add-on %s of cluster %s" % (name, cluster)
    found = call_missing_ok(
        "describe " + what, client.describe_addon, "ResourceNotFoundException", clusterName=cluster, addonName=name
    )
    current = found["addon"] if found else None
    before = _addon_view(current)

    if params["state"] == "absent":
        if current and not check_mode:
            request = {"clusterName": cluster, "addonName": name}
            if params.get("preserve"):
                request["preserve"] = True
            call("delete " + what, client.delete_addon, **request)
        return _result(bool(current), "addon", None, before, {})

    wanted = {}
    if params.get("addon_version"):
        wanted["addonVersion"] = params["addon_version"]
    if params.get("service_account_role_arn") is not None:
        wanted["serviceAccountRoleArn"] = params["service_account_role_arn"]
    if params.get("configuration_values") is not None:
        wanted["configurationValues"] = params["configuration_values"]

    if current is None:
        request = dict(wanted, clusterName=cluster, addonName=name)
        if params.get("resolve_conflicts"):
            request["resolveConflicts"] = params["resolve_conflicts"]
        if params.get("tags"):
            request["tags"] = params["tags"]
        addon = dict(request, tags=params.get("tags") or {})
        if not check_mode:
            addon = call("create " + what, client.create_addon, **request)["addon"]
        return _result(True, "addon", addon, before, _addon_view(dict(request, tags=params.get("tags") or {})))

    update = {k: v for k, v in wanted.items() if (current.get(k) or "") != (v or "")}
    changed = bool(update)
    addon = dict(current, **update)
    if update and not check_mode:
        request = dict(update, clusterName=cluster, addonName=name)
        if params.get("resolve_conflicts"):
            request["resolveConflicts"] = params["resolve_conflicts"]
        call("update " + what, client.update_addon, **request)
    if _sync_tags(
        client, current["addonArn"], current.get("tags"), params.get("tags"), params["purge_tags"], check_mode
    ):
        changed = True
    addon["tags"] = _desired_tags(current.get("tags"), params.get("tags"), params["purge_tags"])
    return _result(changed, "addon", addon, before, _addon_view(addon))


# ---------------------------------------------------------------- IAM OIDC providers


def oidc_provider_arn(account_id: str, partition: str, url: str) -> str:
    host = url.split("://", 1)[-1].rstrip("/")
    return "arn:%s:iam::%s:oidc-provider/%s" % (partition, account_id, host)


def _oidc_view(provider):
    if not provider:
        return {}
    return {
        "url": provider.get("Url"),
        "client_id_list": sorted(provider.get("ClientIDList") or []),
        "thumbprint_list": sorted(provider.get("ThumbprintList") or []),
        "tags": dict(provider.get("Tags") or {}),
    }


def _tag_dict(tag_list):
    return {t["Key"]: t["Value"] for t in tag_list or []}


def ensure_oidc_provider(client: Any, params: dict, check_mode: bool, arn: str) -> dict:
    url = params["url"]
    what = "IAM OIDC provider " + arn
    found = call_missing_ok(
        "get " + what, client.get_open_id_connect_provider, "NoSuchEntity", OpenIDConnectProviderArn=arn
    )
    current = None
    if found:
        current = dict(found, Tags=_tag_dict(found.get("Tags")))
        current.pop("ResponseMetadata", None)
    before = _oidc_view(current)

    if params["state"] == "absent":
        if current and not check_mode:
            call("delete " + what, client.delete_open_id_connect_provider, OpenIDConnectProviderArn=arn)
        return _oidc_result(bool(current), None, arn, before, {})

    client_ids = params["client_id_list"]
    thumbprints = params.get("thumbprint_list")
    tags = params.get("tags")
    if current is None:
        request = {"Url": url if "://" in url else "https://" + url, "ClientIDList": client_ids}
        if thumbprints:
            request["ThumbprintList"] = thumbprints
        if tags:
            request["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
        if not check_mode:
            call("create " + what, client.create_open_id_connect_provider, **request)
        provider = {
            "Url": request["Url"].split("://", 1)[1],
            "ClientIDList": client_ids,
            "ThumbprintList": thumbprints or [],
            "Tags": tags or {},
        }
        return _oidc_result(True, provider, arn, before, _oidc_view(provider))

    changed = False
    provider = dict(current)
    have = set(current.get("ClientIDList") or [])
    for cid in client_ids:
        if cid not in have:
            changed = True
            if not check_mode:
                call(
                    "add client id to " + what,
                    client.add_client_id_to_open_id_connect_provider,
                    OpenIDConnectProviderArn=arn,
                    ClientID=cid,
                )
    if params["purge_client_ids"]:
        for cid in sorted(have - set(client_ids)):
            changed = True
            if not check_mode:
                call(
                    "remove client id from " + what,
                    client.remove_client_id_from_open_id_connect_provider,
                    OpenIDConnectProviderArn=arn,
                    ClientID=cid,
                )
        provider["ClientIDList"] = list(client_ids)
    else:
        provider["ClientIDList"] = sorted(have | set(client_ids))
    if thumbprints is not None and sorted(thumbprints) != sorted(current.get("ThumbprintList") or []):
        changed = True
        provider["ThumbprintList"] = thumbprints
        if not check_mode:
            call(
                "update thumbprints of " + what,
                client.update_open_id_connect_provider_thumbprint,
                OpenIDConnectProviderArn=arn,
                ThumbprintList=thumbprints,
            )
    if tags is not None:
        to_set, to_unset = compare_aws_tags(current.get("Tags") or {}, tags, params["purge_tags"])
        if to_set or to_unset:
            changed = True
            if not check_mode:
                if to_unset:
                    call(
                        "untag " + what,
                        client.untag_open_id_connect_provider,
                        OpenIDConnectProviderArn=arn,
                        TagKeys=to_unset,
                    )
                if to_set:
                    call(
                        "tag " + what,
                        client.tag_open_id_connect_provider,
                        OpenIDConnectProviderArn=arn,
                        Tags=[{"Key": k, "Value": v} for k, v in to_set.items()],
                    )
        provider["Tags"] = _desired_tags(current.get("Tags"), tags, params["purge_tags"])
    return _oidc_result(changed, provider, arn, before, _oidc_view(provider))


def _oidc_result(changed, provider, arn, before, after):
    out = {"changed": changed, "arn": arn, "diff": {"before": before, "after": after}}
    out["oidc_provider"] = dict(_oidc_view(provider), arn=arn) if provider else {}
    return out
