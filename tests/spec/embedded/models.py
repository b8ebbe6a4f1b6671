# Djongo's "Use Django Admin to add documents" and "Djongo Manager" examples, as printed.
from djongo import models


class Blog(models.Model):
    name = models.CharField(max_length=100)
    tagline = models.TextField()

    class Meta:
        abstract = True


class Entry(models.Model):
    blog = models.EmbeddedField(
        model_container=Blog,
    )

    headline = models.CharField(max_length=255)
    objects = models.DjongoManager()
