import deployments.naming
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('deployments', '0004_project_slug_unique_across_installation'),
    ]

    operations = [
        migrations.AlterField(
            model_name='project',
            name='slug',
            field=models.CharField(max_length=30, unique=True, validators=[deployments.naming.dns_label_validator]),
        ),
    ]
