from django import forms

from deployments.ssh.models import SSHKey


class SSHKeyForm(forms.Form):
    name = forms.CharField(
        max_length=SSHKey._meta.get_field("name").max_length,
        required=False,
        help_text="Where the key lives, e.g. “work laptop”. Empty: the key's comment.",
    )
    public_key = forms.CharField(
        label="Public key",
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "placeholder": "ssh-ed25519 AAAA… you@laptop"}),
        help_text="One line of your .pub file (cat ~/.ssh/id_ed25519.pub): ed25519, ecdsa, or rsa of 2048 bits "
        "or more. Never the private key.",
    )
