from django.contrib.contenttypes.fields import GenericForeignKey, GenericRelation
from django.contrib.contenttypes.models import ContentType
from djongo import models


class Blog(models.Model):
    name = models.CharField(max_length=100)
    tagline = models.TextField()

    class Meta:
        abstract = True

    def __str__(self):
        return self.name


class Author(models.Model):
    name = models.CharField(max_length=200)
    email = models.EmailField(unique=True, null=True, blank=True)
    rank = models.IntegerField(default=0)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Entry(models.Model):
    blog = models.EmbeddedField(model_container=Blog)
    headline = models.CharField(max_length=255)
    body_text = models.TextField(blank=True)
    pub_date = models.DateField(null=True)
    n_comments = models.IntegerField(default=0)
    rating = models.FloatField(null=True)
    author = models.ForeignKey(Author, null=True, on_delete=models.CASCADE,
                               related_name="entries")
    contributors = models.ManyToManyField(Author, related_name="contributed", blank=True)

    objects = models.DjongoManager()

    def __str__(self):
        return self.headline


class Document(models.Model):
    _id = models.ObjectIdField()
    title = models.CharField(max_length=100)


class Comment(models.Model):
    """Points at any row through a CharField object id, as many apps do."""

    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    object_id = models.CharField(max_length=64)
    target = GenericForeignKey("content_type", "object_id")
    text = models.CharField(max_length=100)


class Topic(models.Model):
    name = models.CharField(max_length=100)
    comments = GenericRelation(Comment)


class Article(models.Model):
    """The articles of MongoDB's $text manual page (tests/test_text_search.py)."""

    subject = models.CharField(max_length=200)
    author = models.CharField(max_length=50, blank=True)
    views = models.IntegerField(default=0)

    class Meta:
        indexes = [models.TextIndex(fields=["subject"], name="article_subject_text")]
