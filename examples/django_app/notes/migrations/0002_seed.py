"""Demo accounts: alice (superuser), bob and carol (regular users), and the 'editors' group."""

from django.contrib.auth.hashers import make_password
from django.db import migrations


def seed(apps, schema_editor):
    db = schema_editor.connection.alias  # the database being migrated, not always "default"
    User = apps.get_model("auth", "User")
    Group = apps.get_model("auth", "Group")
    User.objects.using(db).create(username="alice", password=make_password("alice-pw"), is_staff=True,
                                  is_superuser=True)
    User.objects.using(db).create(username="bob", password=make_password("bob-pw"))
    User.objects.using(db).create(username="carol", password=make_password("carol-pw"))
    Group.objects.using(db).create(name="editors")


class Migration(migrations.Migration):
    dependencies = [("notes", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
