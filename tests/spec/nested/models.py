# The models behind Djongo's requirements example (Django's own Blog/Entry):
# inner_qs = Blog.objects.filter(name__contains='Ch').values('name')
from djongo import models


class Blog(models.Model):
    name = models.CharField(max_length=100)
    tagline = models.TextField()


class Entry(models.Model):
    blog = models.ForeignKey(Blog, on_delete=models.CASCADE)
    headline = models.CharField(max_length=255)
