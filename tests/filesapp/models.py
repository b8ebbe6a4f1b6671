from djongo import models
from djongo.storage import GridFSStorage

# The example from Djongo's documentation, verbatim.
grid_fs_storage = GridFSStorage(collection='myfiles')


class Profile(models.Model):
    name = models.CharField(max_length=100)
    avatar = models.ImageField(storage=grid_fs_storage, upload_to='')

    def __str__(self):
        return self.name


documents = GridFSStorage(collection="documents", base_url="/files/")


class Attachment(models.Model):
    title = models.CharField(max_length=100)
    upload = models.FileField(storage=documents, upload_to="reports/%Y")

    def __str__(self):
        return self.title
