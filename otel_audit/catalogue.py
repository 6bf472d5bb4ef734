"""The action catalogue and its OCSF mapping, kept as data.

Each known action names its usual category and the OCSF class/activity a SIEM should parse it as.
Unknown actions are allowed (apps have their own verbs); they map to the category's class with
activity 99 ("Other"). docs/attributes.md renders this table.
"""

from __future__ import annotations

# OCSF classes (schema 1.x) by audit category.
OCSF_CLASS_BY_CATEGORY = {
    "authentication": 3002,  # Authentication
    "account_management": 3001,  # Account Change
    "authorization": 3005,  # User Access Management
    "data_access": 6005,  # Datastore Activity
    "data_modification": 6005,  # Datastore Activity
    "configuration": 6003,  # API Activity
    "admin": 6003,  # API Activity
    "http": 6003,  # API Activity
    "audit_system": 6002,  # Application Lifecycle
}

#: action -> (usual category, {ocsf class uid: activity id}, description)
ACTIONS: dict[str, tuple[str, dict[int, int], str]] = {
    "login": ("authentication", {3002: 1}, "A user logged on"),
    "login_failed": ("authentication", {3002: 1}, "A logon attempt failed (outcome failure)"),
    "logout": ("authentication", {3002: 2}, "A user logged off"),
    "token_issue": ("authentication", {3002: 3}, "An access token was issued"),
    "password_change": ("account_management", {3001: 3}, "A user changed a password"),
    "password_reset": ("account_management", {3001: 4}, "A password was reset"),
    "create_user": ("account_management", {3001: 1}, "An account was created"),
    "update_user": ("account_management", {3001: 99}, "An account was changed"),
    "delete_user": ("account_management", {3001: 6}, "An account was deleted"),
    "enable_user": ("account_management", {3001: 2}, "An account was enabled"),
    "disable_user": ("account_management", {3001: 5}, "An account was disabled"),
    "credential_change": ("account_management", {3001: 99}, "A credential (key, MFA) changed"),
    "grant_role": ("authorization", {3005: 1}, "A role, group or permission was granted"),
    "revoke_role": ("authorization", {3005: 2}, "A role, group or permission was revoked"),
    "access_denied": ("authorization", {3005: 99}, "An authorisation check refused access"),
    "create_resource": ("data_modification", {6005: 6, 6003: 1}, "A resource was created"),
    "read_resource": ("data_access", {6005: 1, 6003: 2}, "A resource was read"),
    "update_resource": ("data_modification", {6005: 2, 6003: 3}, "A resource was changed"),
    "delete_resource": ("data_modification", {6005: 7, 6003: 4}, "A resource was deleted"),
    "export": ("data_access", {6005: 1, 6003: 2}, "Data was exported in bulk"),
    "query": ("data_access", {6005: 4}, "A database query read data"),
    "insert": ("data_modification", {6005: 5}, "Rows were inserted"),
    "update": ("data_modification", {6005: 2}, "Rows were updated"),
    "delete": ("data_modification", {6005: 7}, "Rows were deleted"),
    "schema_change": ("configuration", {6005: 99, 6003: 3}, "DDL changed the schema"),
    "config_change": ("configuration", {6003: 3}, "Application configuration changed"),
    "request": ("http", {6003: 99}, "An HTTP request (not classified further)"),
    "start": ("audit_system", {6002: 3}, "Auditing started"),
    "stop": ("audit_system", {6002: 4}, "Auditing stopped"),
    "policy_loaded": ("audit_system", {6002: 8}, "An audit policy was loaded"),
    "policy_invalid": ("audit_system", {6002: 99}, "An audit policy was rejected; fallback in force"),
    "audit_failure": ("audit_system", {6002: 99}, "The audit pipeline failed to record something"),
}

# HTTP method -> API Activity activity (Create, Read, Update, Delete) for unclassified requests.
_API_ACTIVITY_BY_METHOD = {"POST": 1, "GET": 2, "HEAD": 2, "PUT": 3, "PATCH": 3, "DELETE": 4}


def ocsf_for(category: str, action: str, http_method: str | None = None) -> tuple[int, int]:
    """(class_uid, activity_id) for an event."""
    class_uid = OCSF_CLASS_BY_CATEGORY.get(category, 6003)
    entry = ACTIONS.get(action)
    if entry is not None:
        activity = entry[1].get(class_uid)
        if activity is not None:
            return class_uid, activity
    if class_uid == 6003 and http_method:
        return class_uid, _API_ACTIVITY_BY_METHOD.get(http_method.upper(), 99)
    return class_uid, 99
