"""Who is asked, when: invitations, the outgoing message queue, and why a message is not sent."""
