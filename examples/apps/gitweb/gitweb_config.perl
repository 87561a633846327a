# gitweb's own configuration, read from its working directory (the CGI
# root's copy of /usr/share/gitweb): where the repositories are.
our $projectroot = "/srv/git";
our $site_name = "cgiq gitweb";
