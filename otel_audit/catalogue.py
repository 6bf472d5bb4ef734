"""The action vocabulary and its OCSF mapping, kept as data.

One vocabulary for every layer: a SQL ``DELETE``, an ORM delete, a REST ``DELETE /items/7`` and a
route the policy calls a deletion are all ``delete_resource``. Each action names its usual
category and the OCSF class/activity a SIEM should parse it as (OCSF 1.x as published: IAM's User
Management 3007 for accounts and role assignments, which replaces the deprecated Account Change
3001; Application category's API Activity 6003 for an action taken through an API call and
Datastore Activity 6005 for one taken on a database directly). Unknown actions are allowed (apps
have their own verbs); they map to the category's class with activity 99 ("Other").
docs/attributes.md renders this table.
"""

from __future__ import annotations

API_ACTIVITY, DATASTORE_ACTIVITY, USER_MANAGEMENT = 6003, 6005, 3007

# OCSF classes by audit category (an action's own class, below, comes first).
OCSF_CLASS_BY_CATEGORY = {
    "authentication": 3002,  # Authentication
    "account_management": USER_MANAGEMENT,  # User Management
    "authorization": USER_MANAGEMENT,  # User Management (Assign / Remove Roles)
    "data_access": DATASTORE_ACTIVITY,
    "data_modification": DATASTORE_ACTIVITY,
    "configuration": API_ACTIVITY,
    "admin": API_ACTIVITY,
    "http": API_ACTIVITY,
    "audit_system": 6002,  # Application Lifecycle
}

#: action -> (usual category, {ocsf class uid: activity id}, description)
ACTIONS: dict[str, tuple[str, dict[int, int], str]] = {
    "login": ("authentication", {3002: 1}, "A user logged on"),
    "login_failed": ("authentication", {3002: 1}, "A logon attempt failed (outcome failure)"),
    "logout": ("authentication", {3002: 2}, "A user logged off"),
    "token_issue": ("authentication", {3002: 3}, "An access token was issued"),
    "password_change": ("account_management", {USER_MANAGEMENT: 8}, "A user changed a password"),
    "password_reset": ("account_management", {USER_MANAGEMENT: 9}, "A password was reset"),
    "create_user": ("account_management", {USER_MANAGEMENT: 1}, "An account was created"),
    "update_user": ("account_management", {USER_MANAGEMENT: 2}, "An account was changed"),
    "delete_user": ("account_management", {USER_MANAGEMENT: 3}, "An account was deleted"),
    "enable_user": ("account_management", {USER_MANAGEMENT: 4}, "An account was enabled"),
    "disable_user": ("account_management", {USER_MANAGEMENT: 5}, "An account was disabled"),
    "credential_change": ("account_management", {USER_MANAGEMENT: 2}, "A credential (key, MFA) changed"),
    "grant_role": ("authorization", {USER_MANAGEMENT: 16}, "A role, group or permission was granted"),
    "revoke_role": ("authorization", {USER_MANAGEMENT: 17}, "A role, group or permission was revoked"),
    "access_denied": ("authorization", {API_ACTIVITY: 99}, "An authorisation check refused access"),
    "create_resource": ("data_modification", {DATASTORE_ACTIVITY: 6, API_ACTIVITY: 1}, "A resource was created"),
    "read_resource": ("data_access", {DATASTORE_ACTIVITY: 1, API_ACTIVITY: 2}, "A resource was read"),
    "update_resource": ("data_modification", {DATASTORE_ACTIVITY: 2, API_ACTIVITY: 3}, "A resource was changed"),
    "delete_resource": ("data_modification", {DATASTORE_ACTIVITY: 7, API_ACTIVITY: 4}, "A resource was deleted"),
    "export": ("data_access", {DATASTORE_ACTIVITY: 1, API_ACTIVITY: 2}, "Data was exported in bulk"),
    "schema_change": ("configuration", {DATASTORE_ACTIVITY: 99, API_ACTIVITY: 3}, "DDL changed the schema"),
    "config_change": ("configuration", {API_ACTIVITY: 3}, "Application configuration changed"),
    "deploy": ("configuration", {API_ACTIVITY: 3}, "A new version, revision or environment started on this spool"),
    "policy_change": ("configuration", {API_ACTIVITY: 3}, "The audit policy differs from the previous start's"),
    "request": ("http", {}, "An HTTP request not classified further (API Activity by method: POST Create ... DELETE Delete)"),
    "start": ("audit_system", {6002: 3}, "Auditing started"),
    "stop": ("audit_system", {6002: 4}, "Auditing stopped"),
    "policy_loaded": ("audit_system", {6002: 8}, "An audit policy was loaded"),
    "policy_invalid": ("audit_system", {6002: 99}, "An audit policy was rejected; fallback in force"),
    "audit_failure": ("audit_system", {6002: 99}, "The audit pipeline failed to record something"),
    "records_lost": ("audit_system", {6002: 99}, "Records could not be made durable: the chain gap, declared"),
    "checkpoint": ("audit_system", {6002: 99}, "A signed checkpoint of a running chain (truncation evidence)"),
}

#: Old action names (before the one vocabulary) -> their name now. Policies may still use them:
#: the loader reads them as the new name and ``policy validate`` says so.
ACTION_ALIASES: dict[str, str] = {
    "insert": "create_resource",
    "update": "update_resource",
    "delete": "delete_resource",
    "query": "read_resource",
    "select": "read_resource",
    "merge": "update_resource",
    "copy": "create_resource",
}

# HTTP method -> API Activity activity (Create, Read, Update, Delete) for unclassified requests.
_API_ACTIVITY_BY_METHOD = {"POST": 1, "GET": 2, "HEAD": 2, "PUT": 3, "PATCH": 3, "DELETE": 4}
_DATA_CATEGORIES = frozenset({"data_access", "data_modification"})


def ocsf_for(category: str, action: str, http_method: str | None = None) -> tuple[int, int]:
    """(class_uid, activity_id) for an event. Data actions taken through an HTTP request are API
    Activity (the call, with its resources); without one (a worker's transaction) Datastore Activity."""
    class_uid = OCSF_CLASS_BY_CATEGORY.get(category, API_ACTIVITY)
    if http_method and category in _DATA_CATEGORIES:
        class_uid = API_ACTIVITY
    entry = ACTIONS.get(action)
    if entry is not None and entry[1]:
        activities = entry[1]
        activity = activities.get(class_uid)
        if activity is not None:
            return class_uid, activity
        return next(iter(activities.items()))  # the action's own class (grant_role: User Management)
    if class_uid == API_ACTIVITY and http_method:
        return class_uid, _API_ACTIVITY_BY_METHOD.get(http_method.upper(), 99)
    return class_uid, 99
