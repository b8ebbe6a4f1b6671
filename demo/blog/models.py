"""The blog from djongo's documentation: an Entry embeds its Blog as a sub-document."""

from djongo import models


class Blog(models.Model):
    """Not a collection of its own: stored inside each Entry document."""

    name = models.CharField(max_length=100)
    tagline = models.TextField()

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.name


class Author(models.Model):
    name = models.CharField(max_length=200)
    email = models.EmailField(unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Entry(models.Model):
    blog = models.EmbeddedField(model_container=Blog)
    headline = models.CharField(max_length=255)
    body_text = models.TextField()
    pub_date = models.DateField()
    n_comments = models.IntegerField(default=0)
    author = models.ForeignKey(Author, on_delete=models.CASCADE)
    contributors = models.ManyToManyField(Author, related_name="contributed_entries", blank=True)

    objects = models.DjongoManager()

    class Meta:
        verbose_name_plural = "entries"
        # MongoDB's full-text search over both fields, headline words counting
        # ten times more; the admin's search box uses it (blog/admin.py).
        indexes = [
            models.TextIndex(fields=["headline", "body_text"], weights={"headline": 10},
                             name="entry_text"),
        ]

    def __str__(self) -> str:
        return self.headline
