
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='AuditEntry',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('created_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now, verbose_name='时间')),
                ('actor_username', models.CharField(blank=True, max_length=150, verbose_name='操作人账号')),
                ('action', models.CharField(db_index=True, max_length=100, verbose_name='操作')),
                ('object_type', models.CharField(blank=True, db_index=True, max_length=100, verbose_name='对象类型')),
                ('object_id', models.CharField(blank=True, max_length=64, verbose_name='对象 ID')),
                ('object_repr', models.CharField(blank=True, max_length=200, verbose_name='对象')),
                ('before', models.JSONField(blank=True, null=True, verbose_name='修改前')),
                ('after', models.JSONField(blank=True, null=True, verbose_name='修改后')),
                ('message', models.CharField(blank=True, max_length=500, verbose_name='说明')),
                ('ip_address', models.GenericIPAddressField(blank=True, null=True, verbose_name='IP 地址')),
                ('user_agent', models.CharField(blank=True, max_length=300, verbose_name='浏览器标识（User-Agent）')),
                ('actor', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='操作人')),
            ],
            options={
                'verbose_name': '审计日志',
                'verbose_name_plural': '审计日志',
                'ordering': ('-id',),
                'indexes': [models.Index(fields=['object_type', 'object_id'], name='audit_object_idx'), models.Index(fields=['actor', 'created_at'], name='audit_actor_idx')],
            },
        ),
    ]
